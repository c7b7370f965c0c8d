"""The reference: chat templates rendered in a Jinja sandbox exactly as ``transformers`` renders them.

Every translation is proven against what this renders. :mod:`.sandbox` is the environment
(extensions, globals, filters), which the translator also parses templates with; :mod:`.render`
is ``apply_chat_template``'s handling of a conversation (generation prompt, continuation).
"""

from .render import RenderContext, TemplateRaised, render_chat
from .sandbox import GENERATION_METHOD, compile_template, make_environment

__all__ = [
    "GENERATION_METHOD",
    "RenderContext",
    "TemplateRaised",
    "compile_template",
    "make_environment",
    "render_chat",
]
