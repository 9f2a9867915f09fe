"""OUTDIR/batch.jsonl: one JSON record per finished job attempt, appended atomically (engine.files.append_line), and
what a rerun reads back from it: which jobs are done with the same options (skipped), which must run again.

A record: {"job", "status": "done"|"failed", "output", "content", "style", "options" (dataclasses.asdict of the
job's StylizeOptions), "model", "seconds", "loss", "terms", "iterations", "evaluations", "size", "provider",
"message", "error" (one line, or null), "attempts", "worker", "finished" (UTC, ISO 8601)}. Later lines win."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..engine.files import TMP_SUFFIX, append_line, read_lines
from ..engine.options import StylizeOptions
from .jobs import Job

RECORD_FILE = "batch.jsonl"
LOCK_FILE = ".batch.lock"


class BatchLockedError(RuntimeError):
    """Another nst-batch is writing to the same OUTDIR."""


def normalised(value: Any) -> Any:
    """What JSON makes of a value (tuples become lists, ...), so a fresh value compares equal to a read-back one."""
    return json.loads(json.dumps(value))


def job_options(job: Job, base: StylizeOptions) -> dict[str, Any]:
    return normalised(dataclasses.asdict(job.options(base)))


def job_fields(job: Job, base: StylizeOptions, model_id: str) -> dict[str, Any]:
    """The fields of a job's record known before it runs; also what a rerun compares (with the output's presence)."""
    return {
        "job": job.name,
        "output": str(job.out),
        "content": str(job.content.resolve()),
        "style": str(job.style.resolve()),
        "options": job_options(job, base),
        "model": model_id,
    }


def append_record(outdir: Path, record: Mapping[str, Any]) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    append_line(outdir / RECORD_FILE, {**record, "finished": stamp})


def latest_records(outdir: Path) -> dict[str, dict[str, Any]]:
    """The last complete record of each job name (a torn last line, from a crash mid-append, is skipped)."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_lines(outdir / RECORD_FILE):
        if isinstance(record.get("job"), str):
            latest[record["job"]] = record
    return latest


def is_done(job: Job, fields: Mapping[str, Any], latest: Mapping[str, Mapping[str, Any]]) -> bool:
    """Done = the output file exists and the job's latest record says done with the same files, options and model."""
    record = latest.get(job.name)
    if record is None or record.get("status") != "done" or not job.out.is_file():
        return False
    return all(record.get(k) == fields[k] for k in ("content", "style", "options", "model"))


def stray_temporaries(outdir: Path, jobs: Sequence[Job]) -> list[Path]:
    """Half-written outputs left by a killed run: `.<name>.<random>.tmp` beside the outputs (engine.files)."""
    names = {job.name for job in jobs}
    found = []
    for path in outdir.glob(f".*{TMP_SUFFIX}"):
        stem = path.name[1 : -len(TMP_SUFFIX)]
        if stem.rpartition(".")[0] in names:
            found.append(path)
    return sorted(found)


def remove_strays(outdir: Path, jobs: Sequence[Job]) -> int:
    removed = 0
    for path in stray_temporaries(outdir, jobs):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def batch_lock(outdir: Path) -> Iterator[None]:
    """One nst-batch per OUTDIR at a time (an advisory lock on OUTDIR/.batch.lock, released when the process ends)."""
    fd = os.open(outdir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchLockedError(
                f"another nst-batch is writing to {outdir}; wait for it to finish or use another -o"
            ) from None
        yield
    finally:
        os.close(fd)
