// Command gorender renders Ollama TEMPLATEs with Go's real text/template, feeding each
// conversation the way Ollama's chat endpoint does (template/template.go: Parse, Vars,
// Execute and collate). modelkit's tests compare its output with the Jinja reference and
// with modelkit's Python evaluator.
//
// Input (stdin, JSON): {"today": "2006-01-02", "cases": [case...]}, each case being
// {"template": "...", "system": "...", "think": null | true | false | "high", "conversations": [c...]}
// and each conversation c a list of messages, or {"messages": [...], "tools": [api.Tool...]}.
//
// Messages and tools are as Ollama's API carries them (api.Message: thinking, tool_calls with
// arguments as an object, tool_name, tool_call_id; api.Tool), converted as template.go's
// convertMessagesForTemplate and convertToolsForTemplate do: the types below mirror Ollama's.
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

type toolCall struct {
	ID       string `json:"id"`
	Function struct {
		Index     int            `json:"index"`
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	} `json:"function"`
}

type message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Thinking   string     `json:"thinking"`
	ToolCalls  []toolCall `json:"tool_calls"`
	ToolName   string     `json:"tool_name"`
	ToolCallID string     `json:"tool_call_id"`
}

// propertyType is api.PropertyType: one type is written as a string, several as a list.
type propertyType []string

func (pt *propertyType) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*pt = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return err
	}
	*pt = many
	return nil
}

func (pt propertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

// toolProperty is api.ToolProperty (nested properties left out: the tests use flat ones).
type toolProperty struct {
	AnyOf       []toolProperty `json:"anyOf,omitempty"`
	Type        propertyType   `json:"type,omitempty"`
	Items       any            `json:"items,omitempty"`
	Description string         `json:"description,omitempty"`
	Enum        []any          `json:"enum,omitempty"`
	Required    []string       `json:"required,omitempty"`
}

type tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Parameters  struct {
			Type       string                  `json:"type"`
			Required   []string                `json:"required"`
			Properties map[string]toolProperty `json:"properties"`
		} `json:"parameters"`
	} `json:"function"`
}

// The types template.go hands the template.
type templateTools []templateTool

func (t templateTools) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateArgs map[string]any

func (t templateArgs) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateProperties map[string]toolProperty

func (t templateProperties) String() string {
	if t == nil {
		return "{}"
	}
	bts, _ := json.Marshal(t)
	return string(bts)
}

func (t templateTool) String() string {
	bts, _ := json.Marshal(t)
	return string(bts)
}

type templateTool struct {
	Type     string               `json:"type"`
	Items    any                  `json:"items,omitempty"`
	Function templateToolFunction `json:"function"`
}

type templateToolFunction struct {
	Name        string                         `json:"name"`
	Description string                         `json:"description"`
	Parameters  templateToolFunctionParameters `json:"parameters"`
}

type templateToolFunctionParameters struct {
	Type       string             `json:"type"`
	Defs       any                `json:"$defs,omitempty"`
	Items      any                `json:"items,omitempty"`
	Required   []string           `json:"required,omitempty"`
	Properties templateProperties `json:"properties"`
}

type templateToolCall struct {
	ID       string
	Function templateToolCallFunction
}

type templateToolCallFunction struct {
	Index     int
	Name      string
	Arguments templateArgs
}

// templateMessage has the fields Ollama's template sees for each message.
type templateMessage struct {
	Role       string
	Content    string
	Thinking   string
	Images     []string
	ToolCalls  []templateToolCall
	ToolName   string
	ToolCallID string
}

func convertTools(tools []tool) templateTools {
	if tools == nil {
		return nil
	}
	result := make(templateTools, len(tools))
	for i, t := range tools {
		result[i] = templateTool{Type: t.Type, Function: templateToolFunction{
			Name: t.Function.Name, Description: t.Function.Description,
			Parameters: templateToolFunctionParameters{Type: t.Function.Parameters.Type,
				Required: t.Function.Parameters.Required, Properties: templateProperties(t.Function.Parameters.Properties)}}}
	}
	return result
}

func convertCalls(calls []toolCall) []templateToolCall {
	var out []templateToolCall
	for _, c := range calls {
		out = append(out, templateToolCall{ID: c.ID, Function: templateToolCallFunction{
			Index: c.Function.Index, Name: c.Function.Name, Arguments: templateArgs(c.Function.Arguments)}})
	}
	return out
}

type input struct {
	Today string `json:"today"`
	Cases []struct {
		Template      string         `json:"template"`
		System        string         `json:"system"`
		Think         any            `json:"think"`
		Conversations []conversation `json:"conversations"`
	} `json:"cases"`
}

// conversation is a list of messages, or an object with the messages and the request's tools.
type conversation struct {
	Messages []message `json:"messages"`
	Tools    []tool    `json:"tools"`
}

func (c *conversation) UnmarshalJSON(data []byte) error {
	if err := json.Unmarshal(data, &c.Messages); err == nil {
		return nil
	}
	type plain conversation
	return json.Unmarshal(data, (*plain)(c))
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

func render(t *template.Template, msgs []message, system string, think *thinkValue, tools []tool) (string, error) {
	if system != "" && (len(msgs) == 0 || msgs[0].Role != "system") {
		msgs = append([]message{{Role: "system", Content: system}}, msgs...)
	}
	joined, collated := collate(msgs)
	converted := make([]*templateMessage, len(collated))
	for i, m := range collated {
		converted[i] = &templateMessage{Role: m.Role, Content: m.Content, Thinking: m.Thinking,
			ToolCalls: convertCalls(m.ToolCalls), ToolName: m.ToolName, ToolCallID: m.ToolCallID}
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
		"Tools":      convertTools(tools),
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
			s, err := render(t, conv.Messages, c.System, think, conv.Tools)
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
