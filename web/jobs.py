"""The run queue of one nst-web server: jobs wait in order and one worker thread runs them, one at a time (a
stylization already uses every core; two at once would each run at half speed and need twice the memory).

Pure Python, no HTTP: the app submits, stops and reads jobs; a runner (web/runner.py) does the work of one job and
reports through `emit`; every event (a dict) goes to the listeners, from whichever thread produced it. A running job
is stopped by setting its flag, which the runner's engine callback turns into StopIteration."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, DONE, STOPPED, FAILED, CANCELLED = "queued", "running", "done", "stopped", "failed", "cancelled"
FINISHED = (DONE, STOPPED, FAILED, CANCELLED)


class JobFailed(Exception):
    """A job's expected failure (an impossible size, a NaN): a one-line message and details for the page."""

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.details = details


@dataclass(eq=False)
class Job:
    session: str  # the browser tab's id: a tab sees its own jobs, and closing it cancels them
    work: Any  # what the runner needs; opaque to the queue
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = QUEUED
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # of a failure, e.g. {"fits": 384}
    output: Any = None  # the runner's return value, once done or stopped
    created: float = field(default_factory=time.time)
    cancelled: bool = False  # stopped because its tab went away: the result is of no use to anyone
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def should_stop(self) -> bool:
        return self._stop.is_set()


Runner = Callable[[Job, Callable[[dict], None]], Any]
Listener = Callable[[Job, dict], None]


class JobQueue:
    """FIFO of jobs and the one worker thread that runs them. close() cancels what waits and stops what runs."""

    def __init__(self, runner: Runner, listener: Listener | None = None):
        self._runner = runner
        self._listeners = [listener] if listener is not None else []
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._running: Job | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="nst-web-jobs", daemon=True)
        self._thread.start()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, job: Job, event: dict) -> None:
        for listener in self._listeners:
            listener(job, event)

    def submit(self, job: Job) -> Job:
        with self._cond:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify()
        self._announce_positions()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs_of(self, session: str) -> list[Job]:
        with self._cond:
            return [j for j in self._jobs.values() if j.session == session]

    def position(self, job: Job) -> int:
        """0 while running, 1.. while waiting (1: next), -1 once finished."""
        with self._cond:
            if job is self._running:
                return 0
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return -1

    def stop(self, job_id: str, cancel: bool = False) -> bool:
        """A waiting job is cancelled; a running one stops after its current iteration and keeps its best image (or,
        with cancel, ends as cancelled). False if there is no such job or it has finished."""
        job = self._jobs.get(job_id)
        if job is None:
            return False
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
                job.state, job.cancelled = CANCELLED, True
                waiting = True
            elif job is self._running:
                job.cancelled = job.cancelled or cancel
                job._stop.set()
                waiting = False
            else:
                return False
        if waiting:
            self._emit(job, {"type": "state", "state": CANCELLED})
            self._announce_positions()
        return True

    def cancel_session(self, session: str) -> int:
        """Cancel every waiting or running job of a session (its tab closed); how many."""
        return sum(self.stop(j.id, cancel=True) for j in self.jobs_of(session) if j.state in (QUEUED, RUNNING))

    def _announce_positions(self) -> None:
        with self._cond:
            waiting = list(self._waiting)
        for i, job in enumerate(waiting, start=1):
            self._emit(job, {"type": "state", "state": QUEUED, "position": i})

    def _next(self) -> Job | None:
        with self._cond:
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = self._running = self._waiting.popleft()
            job.state = RUNNING
        return job

    def _work(self) -> None:
        while (job := self._next()) is not None:
            self._emit(job, {"type": "state", "state": RUNNING, "position": 0})
            self._announce_positions()
            try:
                job.output = self._runner(job, functools.partial(self._emit, job))
                state = CANCELLED if job.cancelled else STOPPED if job.should_stop() else DONE
            except JobFailed as e:
                state, job.error, job.details = FAILED, " ".join(str(e).split()), e.details
            except Exception as e:  # a bug in one job must not end the server
                state = FAILED
                job.error = " ".join(f"unexpected {type(e).__name__}: {e} (this is a bug; please report it)".split())
            with self._cond:
                job.state, self._running = state, None
            self._emit(job, {"type": "state", "state": state, "error": job.error, **job.details})

    def close(self, timeout: float = 10.0) -> None:
        """Cancel the waiting jobs, stop the running one and wait (up to timeout s) for the worker to end."""
        with self._cond:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
            running = self._running
            self._cond.notify_all()
        for job in waiting:
            job.state, job.cancelled = CANCELLED, True
        if running is not None:
            running.cancelled = True
            running._stop.set()
        self._thread.join(timeout)
