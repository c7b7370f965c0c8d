// Command gorender renders Ollama TEMPLATEs with Go's real text/template, feeding each
// conversation the way Ollama's chat endpoint does (template/template.go: Parse, Vars,
// Execute and collate). modelkit's tests compare its output with the Jinja reference and
// with modelkit's Python evaluator.
//
// Input (stdin, JSON):  {"today": "2006-01-02", "cases": [{"template": "...", "system": "...",
//                        "think": null | true | false | "high",
//                        "conversations": [[{"role": "user", "content": "..."}]]}]}
//
// "think" is the request's think option (absent or null: not set), turned into the template's
// .Think, .ThinkLevel and .IsThinkSet as server/prompt.go renderPrompt does with api.ThinkValue.
// Output (stdout, JSON): {"cases": [{"error": "...", "results": [{"output": "..."} | {"error": "..."}]}]}
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

type message struct {
	Role       string `json:"role"`
	Content    string `json:"content"`
	Thinking   string `json:"thinking"`
	ToolName   string `json:"tool_name"`
	ToolCallID string `json:"tool_call_id"`
}

// templateMessage has the fields Ollama's template sees for each message.
type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []struct{}
	ToolName   string
	ToolCallID string
}

type input struct {
	Today string `json:"today"`
	Cases []struct {
		Template      string      `json:"template"`
		System        string      `json:"system"`
		Think         any         `json:"think"`
		Conversations [][]message `json:"conversations"`
	} `json:"cases"`
}

type result struct {
	Output *string `json:"output,omitempty"`
	Error  string  `json:"error,omitempty"`
}

type caseResult struct {
	Error   string   `json:"error,omitempty"`
	Results []result `json:"results"`
}

// thinkValue mirrors api.ThinkValue: a bool, a level string, or nil (not set).
type thinkValue struct {
	Value any
}

// Bool is api.ThinkValue.Bool: true if thinking is enabled in any way.
func (t *thinkValue) Bool() bool {
	if t == nil || t.Value == nil {
		return false
	}
	switch v := t.Value.(type) {
	case bool:
		return v
	case string:
		return v == "high" || v == "medium" || v == "low" || v == "max"
	}
	return false
}

// String is api.ThinkValue.String: the level, "medium" for true, "" for false.
func (t *thinkValue) String() string {
	if t == nil || t.Value == nil {
		return ""
	}
	switch v := t.Value.(type) {
	case string:
		return v
	case bool:
		if v {
			return "medium"
		}
	}
	return ""
}

func funcs(today time.Time) template.FuncMap {
	return template.FuncMap{
		"json": func(v any) string {
			b, _ := json.Marshal(v)
			return string(b)
		},
		"currentDate": func(args ...string) string {
			return today.Format("2006-01-02")
		},
		"yesterdayDate": func(args ...string) string {
			return today.AddDate(0, 0, -1).Format("2006-01-02")
		},
	}
}

// identifiers walks a tree as Ollama's template.Identifiers does, including its errors.
func identifiers(n parse.Node) ([]string, error) {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, c := range n.Nodes {
			i, err := identifiers(c)
			if err != nil {
				return names, err
			}
			names = append(names, i...)
		}
		return names, nil
	case *parse.TemplateNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined template specified")
		}
		return identifiers(n.Pipe)
	case *parse.ActionNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined action in template")
		}
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		if n.Pipe == nil {
			return nil, errors.New("undefined branch")
		}
		names, err := identifiers(n.Pipe)
		if err != nil {
			return names, err
		}
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				i, err := identifiers(l)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				i, err := identifiers(a)
				if err != nil {
					return names, err
				}
				names = append(names, i...)
			}
		}
		return names, nil
	case *parse.FieldNode:
		return n.Ident, nil
	case *parse.VariableNode:
		return n.Ident, nil
	}
	return nil, nil
}

// usesMessages is Ollama's Vars check: every node of every template is walked (a walk error
// makes Ollama refuse the template), then "messages" decides the rendering path.
func usesMessages(t *template.Template) (bool, error) {
	found := false
	for _, tt := range t.Templates() {
		for _, n := range tt.Root.Nodes {
			names, err := identifiers(n)
			if err != nil {
				return false, err
			}
			for _, name := range names {
				if strings.ToLower(name) == "messages" {
					found = true
				}
			}
		}
	}
	return found, nil
}

// collate mirrors Ollama: consecutive same-role messages (not tool) are merged with a blank line.
func collate(msgs []message) (string, []*message) {
	var system []string
	var collated []*message
	for i := range msgs {
		if msgs[i].Role == "system" {
			system = append(system, msgs[i].Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role && msgs[i].Role != "tool" {
			collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	return strings.Join(system, "\n\n"), collated
}

func render(t *template.Template, msgs []message, system string, think *thinkValue) (string, error) {
	if system != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		msgs = append([]message{{Role: "system", Content: system}}, msgs...)
	}
	joined, collated := collate(msgs)
	converted := make([]*templateMessage, len(collated))
	for i, m := range collated {
		converted[i] = &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking,
			ToolName: m.ToolName, ToolCallID: m.ToolCallID}
	}
	// server/prompt.go renderPrompt: Think, ThinkLevel and IsThinkSet from the request's think.
	thinkVal, thinkLevel := false, ""
	if think != nil {
		thinkVal = think.Bool()
		thinkLevel = think.String()
	}
	var b bytes.Buffer
	err := t.Execute(&b, map[string]any{
		"System":     joined,
		"Messages":   converted,
		"Tools":      nil,
		"Response":   "",
		"Think":      thinkVal,
		"ThinkLevel": thinkLevel,
		"IsThinkSet": think != nil,
	})
	return b.String(), err
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	today := time.Now()
	if in.Today != "" {
		t, err := time.Parse("2006-01-02", in.Today)
		if err != nil {
			panic(err)
		}
		today = t
	}
	out := struct {
		Cases []caseResult `json:"cases"`
	}{}
	for _, c := range in.Cases {
		cr := caseResult{Results: []result{}}
		t, err := template.New("").Option("missingkey=zero").Funcs(funcs(today)).Parse(c.Template)
		if err == nil {
			var ok bool
			ok, err = usesMessages(t)
			if err == nil && !ok {
				err = errors.New("template does not use .Messages")
			}
		}
		if err != nil {
			cr.Error = err.Error()
			out.Cases = append(out.Cases, cr)
			continue
		}
		var think *thinkValue
		if c.Think != nil {
			think = &thinkValue{Value: c.Think}
		}
		for _, conv := range c.Conversations {
			s, err := render(t, conv, c.System, think)
			if err != nil {
				cr.Results = append(cr.Results, result{Error: err.Error()})
			} else {
				s := s
				cr.Results = append(cr.Results, result{Output: &s})
			}
		}
		out.Cases = append(out.Cases, cr)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
