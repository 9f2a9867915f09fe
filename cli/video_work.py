"""nst-video's work folder: each stylized frame as a PNG the moment it is finished, a settings file and one JSON
record per frame, so that a run stopped by Ctrl-C, a crash or a bad frame continues where it stopped.

    OUT.frames/  (or --frames-dir)
      settings.json        what the frames depend on: the input and its part, styles (sha256), model, every option
      frames.jsonl         one record per stylized frame (iterations, terms, warping error, seconds, early stop)
      frame_000001.png ... the finished frames, 8-bit, written atomically

The finished frames are the run of frame_N.png from N = 1 without a gap; each was written atomically, so none is
half a file. A rerun with other settings is refused (or --force starts again): its frames would not continue these."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.files import append_line, atomic_json, read_lines, sha256_file

SETTINGS = "settings.json"
RECORDS = "frames.jsonl"
FRAME_NAME = "frame_{:06d}.png"  # 1-based, as nst.video.sink names a frames folder's files
IGNORED_OPTIONS = ("device",)  # where a frame is computed does not change what it should be


def default_work_dir(out: Path) -> Path:
    """OUT.frames beside OUT: out.mp4 -> out.mp4.frames, a frames folder out -> out.frames."""
    return out.with_name(out.name + ".frames")


def settings_record(
    source: Any, styles: list[Path], model: Any, options: Any, video_options: Any, size: tuple[int, int]
) -> dict:
    """What the frames depend on, as JSON: equal records give equal frames."""
    stylize = {k: v for k, v in dataclasses.asdict(options).items() if k not in IGNORED_OPTIONS}
    return {
        "input": str(Path(source.path).resolve()) if Path(source.path).exists() else str(source.path),
        "start": source.start,
        "duration": source.duration,
        "fps": source.fps,
        "frame_size": list(source.size),
        "working_size": list(size),
        "styles": [{"path": str(p.resolve()), "sha256": sha256_file(p)} for p in styles],
        "model": model.manifest.id,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in stylize.items()},
        "video_options": dataclasses.asdict(video_options),
    }


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}" if key not in ("options", "video_options") else k for k in _differences(a, b)]
        elif a != b:
            out.append(key)
    return out


class WorkFolder:
    def __init__(self, path: Path):
        self.path = path

    def frame(self, index: int) -> Path:
        """The PNG of frame `index` (0-based)."""
        return self.path / FRAME_NAME.format(index + 1)

    def ours(self, name: str) -> bool:
        return name in (SETTINGS, RECORDS) or (name.startswith("frame_") and name.endswith(".png"))

    def start(self, settings: dict, force: bool) -> int:
        """Prepare the folder for a run with `settings`; returns the number of finished frames to continue after.
        Raises ValueError (one line) when the folder holds another run's frames (and not force) or foreign files."""
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path} is a file, not a work folder; give another --frames-dir")
        self.path.mkdir(parents=True, exist_ok=True)
        names = [p.name for p in self.path.iterdir() if not p.name.startswith(".")]
        foreign = [n for n in names if not self.ours(n)]
        if foreign:
            raise ValueError(
                f"work folder {self.path} holds other files ({foreign[0]}, ...); give an empty or new --frames-dir"
            )
        old = None
        if (self.path / SETTINGS).exists():
            try:
                old = json.loads((self.path / SETTINGS).read_text())
            except (OSError, ValueError):
                old = None
        if force or old != settings:
            if old is not None and not force:
                raise ValueError(
                    f"{self.path} holds frames made with other settings ({', '.join(_differences(old, settings))} "
                    "differ); run the same command as before to continue them, or add --force to start again"
                )
            if names and old is None and not force:
                raise ValueError(
                    f"{self.path} holds frames without a settings file; add --force to replace them, or give "
                    "another --frames-dir"
                )
            for n in names:
                (self.path / n).unlink()
            atomic_json(settings, self.path / SETTINGS)
        return self.finished()

    def finished(self) -> int:
        n = 0
        while self.frame(n).exists():
            n += 1
        return n

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """The first `count` finished frames as (H, W, 3) uint8, read one at a time."""
        from PIL import Image

        for i in range(count):
            with Image.open(self.frame(i)) as im:
                yield np.asarray(im.convert("RGB"))

    def save(self, index: int, image: np.ndarray, record: dict) -> None:
        from ..engine import save_image

        save_image(image, self.frame(index))
        append_line(self.path / RECORDS, record)

    def records(self) -> list[dict]:
        return read_lines(self.path / RECORDS)

    def remove(self) -> None:
        for p in self.path.iterdir():
            if self.ours(p.name):
                p.unlink()
        with contextlib.suppress(OSError):  # something else was put there meanwhile: leave it
            self.path.rmdir()
