"""The default executor: a few worker processes on this machine, each keeping its model loaded.

Not concurrent.futures: there a killed worker breaks the whole pool. Here each worker has its own pipe; the driver
hands it one task at a time and watches both the pipe and the process. A worker that dies (SIGKILL, the out-of-memory
killer, a crash in native code) is replaced and its task retried once; a second death records the job as failed.
Workers ignore SIGINT: on Ctrl-C the driver stops them (they write nothing, so nothing is left half-written)."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from ..engine.model import cpu_count
from .worker import JobRunner, Outcome, Task, failed

MAX_ATTEMPTS = 2  # a job whose worker dies is retried once
_CTX = multiprocessing.get_context("spawn")  # no fork: the driver has threads (the progress bar, onnxruntime)


def default_split(
    cores: int, jobs: int, per_job_bytes: int | None = None, available: int | None = None
) -> tuple[int, int]:
    """(workers, onnxruntime threads per worker) with workers x threads <= cores: one single-threaded worker per core
    (measured fastest on 2 cores, README), fewer when there are fewer jobs or memory for fewer; spare cores become
    threads."""
    workers = max(1, min(cores, jobs))
    if per_job_bytes and available:
        workers = max(1, min(workers, available // per_job_bytes))
    return workers, max(1, cores // workers)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the driver dies, even by SIGKILL (it would otherwise finish its job first)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker exits when its pipe closes
        pass


def serve(conn: Connection, model_dir: str, threads: int) -> None:
    """A worker process: run the tasks the driver sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    runner = JobRunner(model_dir, threads)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(runner.run(task))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    task: Task | None = None
    attempts: int = 0


def _death(process: Any) -> str:
    process.join(timeout=5)
    code = process.exitcode
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return how


class LocalExecutor:
    """results(tasks) yields (task, outcome, attempts) as jobs finish; `running` counts the jobs in progress."""

    name = "local"

    def __init__(self, model_dir: str | Path, workers: int | None = None, threads: int | None = None):
        self.model_dir = str(model_dir)
        self.workers = workers or cpu_count()
        self.threads = threads or max(1, cpu_count() // self.workers)
        self.slots: list[_Slot] = []

    @property
    def running(self) -> int:
        return sum(slot.task is not None for slot in self.slots)

    def _start(self) -> _Slot:
        parent, child = _CTX.Pipe()
        process = _CTX.Process(
            target=serve, args=(child, self.model_dir, self.threads), daemon=True, name="nst-batch-worker"
        )
        process.start()
        child.close()
        return _Slot(process, parent)

    def _assign(self, slot: _Slot, queue: deque[tuple[Task, int]]) -> None:
        task, attempts = queue.popleft()
        try:
            slot.conn.send(task)
        except (BrokenPipeError, OSError):  # the worker died while idle: not the task's fault
            queue.appendleft((task, attempts))
            self._replace(slot)
            return
        slot.task, slot.attempts = task, attempts

    def _replace(self, slot: _Slot) -> None:
        slot.conn.close()
        slot.process.join(timeout=1)
        fresh = self._start()
        slot.process, slot.conn, slot.task = fresh.process, fresh.conn, None

    def _collect(self, slot: _Slot, queue: deque[tuple[Task, int]]) -> tuple[Task, Outcome, int] | None:
        """The busy slot's outcome, or None after a death (the task requeued, or failed after its last attempt)."""
        task, attempts = slot.task, slot.attempts
        assert task is not None
        try:
            outcome = slot.conn.recv() if slot.conn.poll() else None
        except (EOFError, OSError):
            outcome = None
        if outcome is not None:
            slot.task = None
            return task, outcome, attempts
        how = _death(slot.process)
        self._replace(slot)
        if attempts < MAX_ATTEMPTS:
            queue.appendleft((task, attempts + 1))
            return None
        message = f"the worker process died ({how}; out of memory?) on {attempts} attempts"
        return task, failed(message, 0.0), attempts

    def results(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome, int]]:
        queue: deque[tuple[Task, int]] = deque((task, 1) for task in tasks)
        self.slots = [self._start() for _ in range(min(self.workers, len(queue)))]
        try:
            while queue or self.running:
                for slot in self.slots:
                    if slot.task is None and not slot.process.is_alive():
                        self._replace(slot)
                    if slot.task is None and queue:
                        self._assign(slot, queue)
                busy = [slot for slot in self.slots if slot.task is not None]
                if not busy:
                    continue
                ready = set(wait([s.conn for s in busy] + [s.process.sentinel for s in busy]))
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        done = self._collect(slot, queue)
                        if done is not None:
                            yield done
        finally:
            self.close()

    def close(self) -> None:
        for slot in self.slots:
            if slot.task is None and slot.process.is_alive():
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        for slot in self.slots:
            slot.process.join(timeout=0.5 if slot.task is None else 0)
            if slot.process.is_alive():
                slot.process.terminate()
        for slot in self.slots:
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.conn.close()
        self.slots = []
