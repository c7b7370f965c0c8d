"""Go's semantics in Python, at the bottom of the house: string quoting and ``text/template`` as Ollama runs it.

Ollama is written in Go: what it reads from a Modelfile and a TEMPLATE is decided by Go's
``strconv`` (quoted strings) and ``text/template`` (the TEMPLATE language), with Ollama's data and
functions. Both the chat-template translator (which writes TEMPLATEs and proves them) and the
Ollama layer (which registers models and predicts what Ollama does with them) stand on these.

* :mod:`.strconv` — Go's string literals: quoting and unquoting, byte for byte;
* :mod:`.template` — a Python evaluator of ``text/template`` (lexer, parser, executor, printer),
  fed Ollama's data and functions, and what Ollama reads from a TEMPLATE's parse tree.
"""
