"""The quality ladder of a build: every variant's size, bits per weight, perplexity, KL divergence
and prompt checks, as data (``build/report.json``, ``modelkit report --json``) and as a picture
(``build/report.png``: size against mean KL divergence, the full-precision model as reference).

The numbers come from the evaluation targets' own outputs, so the report is as fresh as they are
and costs nothing to recompute. The JSON's names are a contract other tools read:
``{"reference": {...}, "variants": [{"ref", "quant", "bytes", "bits_per_weight", "ppl",
"kld_mean", "top1_agreement", "prompts_passed", "prompts_total"}]}``; with several models (one per
adapter), ``reference`` is the first model's and ``references`` holds each model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VARIANT_FIELDS = ("ref", "quant", "bytes", "bits_per_weight", "ppl", "kld_mean", "top1_agreement",
                  "prompts_passed", "prompts_total")


def assemble(variants: list[Any], max_kld: float | None = None,
             searches: dict[str, Path] | None = None) -> dict[str, Any]:
    """The report of the project's variants (:class:`modelkit.rules.Variant`), from whatever
    their evaluation and judging targets have written so far (missing numbers are None), with
    the spec's ``max_kld`` gate when it has one, and each quantization search's candidates."""
    references: dict[str, dict[str, Any]] = {}
    rows = []
    for v in variants:
        numbers = _read(v.evaluation)
        verdict = _read(v.verdict)
        reference = _read(v.reference)
        if reference and v.model not in references:
            references[v.model] = {"model": v.model, "quant": v.full_quant, "ppl": reference.get("ppl"),
                                   "bytes": v.full_bytes(), "backend": reference.get("backend")}
        row = {"ref": v.ref, "quant": v.quant, "bytes": v.gguf.stat().st_size if v.gguf.is_file() else None,
               **{k: numbers.get(k) for k in ("bits_per_weight", "ppl", "kld_mean", "top1_agreement")},
               "prompts_passed": verdict.get("prompts_passed"), "prompts_total": verdict.get("prompts_total")}
        rows.append(row)
    report: dict[str, Any] = {"reference": next(iter(references.values()), None), "variants": rows}
    if max_kld is not None:
        report["max_kld"] = max_kld
    if len(references) > 1:
        report["references"] = references
    found = {stem: search_summary(data) for stem, path in (searches or {}).items() if (data := _read(path))}
    if found:
        report["search"] = found
    return report


def search_summary(search: dict[str, Any]) -> dict[str, Any]:
    """A search as the report shows it: every candidate's size and quality, those on the Pareto
    front (no other candidate both smaller and closer to full precision), and the choice."""
    rows = sorted(({k: c[k] for k in ("name", "bytes", "kld_mean", "top1_agreement")} for c in search["candidates"]),
                  key=lambda c: (c["bytes"], c["kld_mean"]))
    front, best = [], float("inf")
    for row in rows:
        if row["kld_mean"] < best:
            front.append(row["name"])
            best = row["kld_mean"]
    chosen = search.get("chosen") or {}
    return {"target": search["target"], "candidates": rows, "pareto": front, "chosen": chosen.get("name"),
            "screened": len(search.get("screened") or []), "measured_now": search.get("measured_now"),
            "seconds": search.get("seconds")}


def write(report: dict[str, Any], json_path: Path, png_path: Path) -> str | None:
    """Write the report's JSON and picture atomically; the reason when no picture could be drawn."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    _replace(json_path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    try:
        import matplotlib
    except ImportError:
        return "build/report.png needs matplotlib: pip install 'modelkit[report]'"
    matplotlib.use("Agg")
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    _draw(report, tmp)
    tmp.replace(png_path)
    return None


def _draw(report: dict[str, Any], path: Path) -> None:
    """Size against mean KL divergence, one labelled point per variant; lower left is better."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    measured = [r for r in report["variants"] if r.get("kld_mean") is not None and r.get("bytes")]
    gate = report.get("max_kld")
    for row in measured:
        x, y = row["bytes"] / 1e6, max(row["kld_mean"], 1e-6)
        ax.scatter([x], [y], color="tab:red" if gate is not None and row["kld_mean"] > gate else "tab:blue", zorder=3)
        ax.annotate(f"{row['quant']}  {row['bits_per_weight']:.2f} bpw", (x, y), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    for search in (report.get("search") or {}).values():
        _draw_search(ax, search)
    reference = report.get("reference") or {}
    if reference.get("bytes"):
        ax.axvline(reference["bytes"] / 1e6, color="tab:gray", linestyle="--", linewidth=1)
        ax.annotate(f"{reference.get('quant') or 'full precision'} (reference, PPL {reference.get('ppl') or 0:.2f})",
                    (reference["bytes"] / 1e6, ax.get_ylim()[1] if measured else 1), textcoords="offset points",
                    xytext=(-4, -12), ha="right", fontsize=8, color="tab:gray")
    if gate is not None:
        ax.axhline(gate, color="tab:red", linestyle=":", linewidth=1)
        ax.annotate(f"max_kld {gate:g}", (ax.get_xlim()[0], gate), textcoords="offset points", xytext=(4, 3),
                    fontsize=8, color="tab:red")
    ax.set_yscale("log")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("mean KL divergence vs full precision (log)")
    models = sorted({r["ref"].split(":")[0] for r in report["variants"]})
    ax.set_title(f"quality ladder: {', '.join(models)}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _draw_search(ax: Any, search: dict[str, Any]) -> None:
    """A search's candidates as small grey points, its Pareto front as a line, the choice as a star."""
    rows = {r["name"]: r for r in search["candidates"]}
    ax.scatter([r["bytes"] / 1e6 for r in rows.values()], [max(r["kld_mean"], 1e-6) for r in rows.values()],
               s=12, color="tab:gray", alpha=0.6, zorder=2, label="search candidates")
    front = [rows[n] for n in search["pareto"]]
    ax.plot([r["bytes"] / 1e6 for r in front], [max(r["kld_mean"], 1e-6) for r in front], color="tab:gray",
            linewidth=1, zorder=2, label="Pareto front")
    if search["chosen"] in rows:
        chosen = rows[search["chosen"]]
        ax.scatter([chosen["bytes"] / 1e6], [max(chosen["kld_mean"], 1e-6)], marker="*", s=160, color="tab:green",
                   zorder=4, label=f"chosen: {chosen['name']}")
    ax.legend(fontsize=7, loc="upper right")


def _read(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
