"""What nst-run writes besides the image: the checks before long work, intermediate frames, the JSON log."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from ..engine.files import atomic_json
from ..engine.options import StylizeOptions


def check_writable(path: Path) -> str | None:
    """Create `path`'s parent directory if needed and prove it is writable, before any long work. Returns the problem
    as a phrase, or None."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nst-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"cannot write to {parent}/ ({e.strerror or e}); choose another path"
    if path.is_dir():
        return f"{path} is a directory; give a file name such as {path}/out.png"
    return None


def frame_path(out: Path, iteration: int, stage: int | None = None) -> Path:
    """Intermediate images sit beside OUT: out.png -> out.iter0050.png (out.s2.iter0050.png for stage 2 of several)."""
    tag = f".s{stage}" if stage is not None else ""
    return out.with_name(f"{out.stem}{tag}.iter{iteration:04d}{out.suffix}")


def run_record(options: StylizeOptions, content: Path, styles: list[Path], model: Any, plan: Any) -> dict:
    """The facts of a run known before it starts: options as asked (asdict), what they resolved to, the model."""
    resolved = {} if plan is None else {**plan.resolved(), "warnings": list(plan.warnings)}
    m = model.manifest
    return {
        "options": {"content": str(content), "styles": [str(p) for p in styles], **dataclasses.asdict(options)},
        "resolved": resolved,
        "provider": model.provider,
        "size": list(plan.size) if plan else None,
        "model": {"id": m.id, "path": str(model.path), "arch": m.arch, "weights": m.weights_source},
    }


def result_facts(result: Any) -> dict:
    """The facts of a finished run (a StylizeResult) that the JSON log adds to run_record's."""
    return {
        "history": result.history,
        "evaluations": result.evaluations,
        "iterations": result.iterations,
        "loss": result.loss,
        "terms": result.terms,
        "parts": result.parts,
        "seconds": result.seconds,
        "message": result.message,
        "early_stop": result.early_stop,
        "stopped": result.stopped,
        "interrupted": result.interrupted,
        "stages": result.stages,
    }


def write_log(path: Path | None, record: dict) -> None:
    if path is not None:
        atomic_json(record, path)
