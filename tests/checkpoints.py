"""A training run's checkpoints made from the tiny example's LoRA: the sweep the cluster tests and
the cluster benchmark build (``count`` adapters, each shipped as Q4_K_M and Q8_0)."""

from __future__ import annotations

from pathlib import Path

from conftest import copy_example, without_quality


def make_checkpoints(tiny_model: Path, project: Path, count: int) -> None:
    """``count`` checkpoints of the example's LoRA, as a training run leaves them (each one's
    weights a step further: scaled), and a spec that ships each as Q4_K_M and Q8_0."""
    from safetensors.numpy import load_file, save_file

    copy_example(tiny_model, project)
    weights = load_file(tiny_model / "lora" / "adapter_model.safetensors")
    adapters = ""
    for step in range(1, count + 1):
        folder = project / f"checkpoint-{step * 100}"
        folder.mkdir()
        for name in ("adapter_config.json", "README.md"):
            (folder / name).write_bytes((tiny_model / "lora" / name).read_bytes())
        save_file({k: v * (step / count) for k, v in weights.items()}, folder / "adapter_model.safetensors")
        adapters += f'[[adapters]]\nname = "step{step * 100}"\npath = "./checkpoint-{step * 100}"\n\n'
    spec = without_quality((project / "model.toml").read_text())
    head, _, rest = spec.partition("[[adapters]]")
    rest = rest.partition("\n\n")[2]
    spec = head + adapters + rest
    (project / "model.toml").write_text(spec)
