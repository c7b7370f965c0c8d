"""The proof that a translated TEMPLATE renders what the model's own Jinja renders.

:mod:`.conversations` is the battery of test conversations; :mod:`.prove` renders each with
the Jinja (:mod:`..reference`) and with the Go template (:mod:`modelkit.golang.template`) and compares
them byte for byte, with each setting of Ollama's ``think`` where the template reads a thinking
switch (:mod:`.route`'s :func:`translate_and_prove` is the route the build takes), and on tools and reasoning
for a TEMPLATE that renders them (:data:`TOOL_BATTERY`, :mod:`.declare` shows Ollama so);
:mod:`.families` holds hand-written templates of well-known formats, a second, independent
route proven the same way; :mod:`.images` proves where each of Ollama's engines places an image.
"""

from .conversations import BATTERY, THINKING, TOOL_RESULTS, TOOLS, Conversation, ollama_message
from .families import FAMILIES, Family, FamilyCheck, cross_check, recognise
from .images import IMAGES, ImageProof, Placement, prove_images
from .prove import (
                    DIFFERS,
                    GO_ERROR,
                    GO_JSON_NOTE,
                    OUTSIDE,
                    SAME,
                    THINK_SETTINGS,
                    TOOL_BATTERY,
                    Outcome,
                    Proof,
                    expected_prompt,
                    prove,
                    think_label,
                    think_switches_read,
)
from .route import translate_and_prove

__all__ = [
    "BATTERY",
    "DIFFERS",
    "FAMILIES",
    "GO_ERROR",
    "GO_JSON_NOTE",
    "OUTSIDE",
    "SAME",
    "THINKING",
    "THINK_SETTINGS",
    "TOOLS",
    "TOOL_BATTERY",
    "TOOL_RESULTS",
    "Conversation",
    "Family",
    "FamilyCheck",
    "IMAGES",
    "ImageProof",
    "Outcome",
    "Placement",
    "Proof",
    "cross_check",
    "expected_prompt",
    "ollama_message",
    "prove",
    "prove_images",
    "recognise",
    "think_label",
    "think_switches_read",
    "translate_and_prove",
]
