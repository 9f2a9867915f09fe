"""File helpers shared by the runtime and the exporter: atomic writes, an append-only JSON-lines log, sha256.

Atomic means a reader sees either the old file or the complete new one: the bytes go to a temporary file in the same
directory, which is then renamed over the target (rename is atomic within one file system)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"  # temporary files are named .<target>.<random>.tmp: hidden, and recognisable as leftovers


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object], mode: int = 0o644) -> Path:
    """Call write(f) on a temporary file beside `path`, then rename it over `path`. On any failure (Ctrl-C included)
    the temporary file is removed and an existing `path` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, mode)  # mkstemp makes 0600; an output is as readable as any file the user writes
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def json_safe(value: Any) -> Any:
    """JSON has no NaN or Infinity: null for them (in nested dicts, lists and tuples too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def atomic_json(data: Any, path: str | Path) -> Path:
    """Write `data` as indented JSON atomically (missing parent directories are created; NaN/Inf become null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(data), indent=1) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def append_line(path: str | Path, record: dict) -> None:
    """Append one JSON record (NaN/Inf as null) as one line. A single write() on an O_APPEND descriptor, flushed to
    disk before returning: a crash leaves whole lines only, at worst a torn last line without its newline, which
    readers skip and the next append ends first (so the new record is not glued onto the fragment)."""
    line = (json.dumps(json_safe(record), separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: str | Path) -> list[dict]:
    """The complete JSON records of a file written by append_line (a torn last line is ignored)."""
    records: list[dict] = []
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return records
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
