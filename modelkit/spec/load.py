"""Loading a ``model.toml``: parse, validate, and say what is wrong in one line per problem.

A build tool's first job is to be easy to correct: every problem names the file, the line and the
field, and says what to do (``model.toml:8: quantize.types[1]: 'Q4_K_X' is not a llama.cpp
quantization type (did you mean 'Q4_K_M'?)``). ``tomllib`` gives no positions, so
:mod:`.toml_lines` finds them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelkit.errors import SpecError, UserError
from modelkit.formats.checkpoints import is_complete, is_pattern, newest_complete
from modelkit.formats.gguf import is_gguf
from modelkit.spec.kept import keep, read_kept
from modelkit.spec.location import find_spec, state_dir
from modelkit.spec.toml_lines import field_name, line_of, value_lines

if TYPE_CHECKING:
    from modelkit.spec.model import Spec


class LoadedSpec:
    """A validated spec and where it came from; paths in it are resolved against its folder."""

    def __init__(self, spec: Spec, path: Path, text: str, kept: bool = True) -> None:
        self.spec = spec
        self.kept = kept
        """Whether the next command reads this spec back without validating it (see :mod:`.kept`)."""
        self.path = path
        self.root = path.parent
        self.text = text
        self._lines = value_lines(text)
        self._adapter_folders: dict[int, Path | None] = {}

    def resolve(self, p: Path) -> Path:
        return (self.root / p.expanduser()).resolve()

    def adapter_folder(self, index: int) -> Path | None:
        """The folder of adapter ``index``: its path, or the newest complete checkpoint its
        pattern matches (None if none is complete yet). Resolved once per loaded spec."""
        if index not in self._adapter_folders:
            path = self.spec.adapters[index].path
            assert path is not None
            pattern = self.root / path.expanduser()
            self._adapter_folders[index] = newest_complete(pattern) if is_pattern(path) else self.resolve(path)
        return self._adapter_folders[index]

    @property
    def build_dir(self) -> Path:
        return self.resolve(self.spec.build_dir)

    @property
    def state_dir(self) -> Path:
        return state_dir(self.path)

    def keep_validated(self) -> None:
        """Keep the spec for the next command, if it was validated before the project had a state
        folder (its first build makes one): so the first no-op after a first build imports no pydantic."""
        if not self.kept:
            self.kept = keep(self.state_dir, self.text, self.spec)

    def where(self, *loc: str | int) -> str:
        """``file:line: field`` for error messages about a field of this spec."""
        line = line_of(self._lines, loc)
        return f"{_display(self.path)}:{line or 1}: {field_name(loc)}"

    def error(self, loc: tuple[str | int, ...], message: str) -> SpecError:
        return SpecError([f"{self.where(*loc)}: {message}"])


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_spec(path: Path | None = None, check_files: bool = True) -> LoadedSpec:
    """Read, parse and validate a spec; raise :class:`SpecError` with one line per problem."""
    path = find_spec(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{_display(path)}: cannot read the spec: {e}") from None
    state = state_dir(path)
    spec, kept = read_kept(state, text), True
    if spec is None:
        from modelkit.spec.validate import validate

        spec = validate(text, _display(path))
        kept = keep(state, text, spec)
    loaded = LoadedSpec(spec, path, text, kept)
    if check_files:
        check_local_files(loaded)
    return loaded


def check_local_files(loaded: LoadedSpec) -> None:
    """Check the local inputs exist and look like what they claim to be, before any work starts."""
    spec, problems = loaded.spec, []
    base = spec.base
    if base.path is not None:
        problems += _folder_problems(loaded.where("base", "path"), loaded.resolve(base.path), "config.json",
                                     "point it at a Hugging Face model folder")
    if base.gguf is not None:
        file = loaded.resolve(base.gguf)
        if not file.is_file():
            problems.append(f"{loaded.where('base', 'gguf')}: file {file} does not exist")
        elif not is_gguf(file):
            problems.append(f"{loaded.where('base', 'gguf')}: {file} is not a GGUF file")
    if base.config is not None and not (loaded.resolve(base.config) / "config.json").is_file():
        problems.append(f"{loaded.where('base', 'config')}: {loaded.resolve(base.config)} has no config.json")
    if base.gguf is not None and base.config is None and spec.adapters:
        problems.append(f"{loaded.where('base', 'gguf')}: converting LoRA adapters needs the base model's "
                        "config.json: set base.config to a folder that holds it")
    for i, adapter in enumerate(spec.adapters):
        if adapter.path is None:
            continue
        where = loaded.where("adapters", i, "path")
        if is_pattern(adapter.path):
            if loaded.adapter_folder(i) is None:
                problems.append(f"{where}: no complete checkpoint matches {adapter.path} yet "
                                "(checkpoints still being written are skipped)")
            continue
        folder = loaded.resolve(adapter.path)
        found = _folder_problems(where, folder, "adapter_config.json",
                                 "point it at a PEFT adapter folder (the one save_pretrained wrote)")
        if found:
            problems += found
        elif not any((folder / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
            problems.append(f"{where}: {folder} has no adapter_model.safetensors")
        elif not is_complete(folder):
            problems.append(f"{where}: {folder} is still being written (its weights are shorter than their "
                            "header says); build again when it is complete")
    for field in ("template_file", "chat_template_file"):
        problem = _template_file_problem(loaded, field)
        if problem:
            problems.append(problem)
    texts = [(("quantize", "imatrix"), spec.quantize.imatrix, IMATRIX_CONTEXT),
             (("evaluate", "text"), spec.evaluate.text, spec.evaluate.context)]
    problems += [p for loc, path, context in texts if path is not None
                 and (p := _text_problem(loaded.resolve(path), loaded.where(*loc), context))]
    problems += _image_problems(loaded)
    if problems:
        raise SpecError(problems)


IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
"""What an image a prompt check shows starts with (the formats llama.cpp's mtmd and Ollama both read)."""


def _image_problems(loaded: LoadedSpec) -> list[str]:
    """A projector or check image the spec names that is missing or is not what it must be."""
    problems = []
    if loaded.spec.base.mmproj is not None:
        file = loaded.resolve(loaded.spec.base.mmproj)
        if not file.is_file():
            problems.append(f"{loaded.where('base', 'mmproj')}: file {file} does not exist")
        elif not is_gguf(file):
            problems.append(f"{loaded.where('base', 'mmproj')}: {file} is not a GGUF file")
    for i, check in enumerate(loaded.spec.evaluate.prompts):
        for j, image in enumerate(check.images):
            file, where = loaded.resolve(image), loaded.where("evaluate", "prompts", i, "images", j)
            try:
                with open(file, "rb") as f:
                    head = f.read(8)
            except OSError:
                problems.append(f"{where}: image {file} does not exist or cannot be read")
                continue
            if not any(head.startswith(magic) for magic in IMAGE_MAGIC):
                problems.append(f"{where}: {file} is not a PNG or JPEG image")
    return problems


IMATRIX_CONTEXT = 512  # llama-imatrix's default context, which modelkit uses


def _folder_problems(where: str, folder: Path, holds: str, hint: str) -> list[str]:
    """Why ``folder`` is not the folder a field needs (it does not exist, or lacks ``holds``), if it is not."""
    if not folder.is_dir():
        return [f"{where}: folder {folder} does not exist"]
    if not (folder / holds).is_file():
        return [f"{where}: {folder} has no {holds}; {hint}"]
    return []


def _text_problem(file: Path, where: str, context: int) -> str | None:
    """Why a calibration or evaluation text cannot be used, or None. llama.cpp needs at least two
    contexts' worth of tokens; a token is at least one byte, so fewer bytes are surely too few
    (the exact count is checked with the model's tokenizer when the step runs)."""
    if not file.is_file():
        return f"{where}: file {file} does not exist"
    data = file.read_bytes()
    if b"\0" in data[:1 << 16]:
        return f"{where}: {file} is not text (it holds NUL bytes); give plain UTF-8 text"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"{where}: {file} is not UTF-8 text (byte {e.start}); give plain UTF-8 text"
    if len(data) < 2 * context:
        return (f"{where}: {file} is {len(data)} bytes, fewer than the {2 * context} tokens llama.cpp needs "
                f"(two contexts of {context}); give more text")
    return None


def _template_file_problem(loaded: LoadedSpec, field: str) -> str | None:
    """Why ``[ollama] <field>`` cannot be used, or None: missing, empty (Ollama ignores an empty
    TEMPLATE), or for a Jinja file, not Jinja."""
    given = getattr(loaded.spec.ollama, field)
    if given is None:
        return None
    file, where = loaded.resolve(given), loaded.where("ollama", field)
    if not file.is_file():
        return f"{where}: file {file} does not exist"
    if file.stat().st_size == 0:
        return (f"{where}: {file} is empty, and Ollama ignores an empty TEMPLATE (it keeps a template of its own "
                f"choosing); write the template into it, or remove {field} to inherit the model's")
    if field == "chat_template_file":
        return _not_jinja(file, where)
    return None


def _not_jinja(file: Path, where: str) -> str | None:
    import jinja2

    from modelkit.chat_template.reference import make_environment

    try:
        text = file.read_text(encoding="utf-8")
        make_environment().parse(text)
    except (OSError, UnicodeDecodeError) as e:
        return f"{where}: cannot read {file}: {e}"
    except jinja2.TemplateSyntaxError as e:
        return f"{where}: {file}:{e.lineno}: not a Jinja template ({e.message}); give a chat_template.jinja"
    if "{{" not in text and "{%" not in text:
        return f"{where}: {file} has no Jinja in it ({{{{ … }}}} or {{% … %}}); give a chat_template.jinja"
    return None
