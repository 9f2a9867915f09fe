"""Jobs' events -> the browser tabs' event streams (server-sent events), across threads: the worker thread publishes,
the event loop delivers to each stream of the job's session. A session without an open stream for `grace` seconds
(its tab was closed; a reload reconnects sooner) has its waiting and running jobs cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .jobs import Job


class SessionHub:
    def __init__(self, loop: asyncio.AbstractEventLoop, on_gone: Callable[[str], object], grace: float = 3.0):
        self.loop, self.on_gone, self.grace = loop, on_gone, grace
        self._streams: dict[str, set[asyncio.Queue]] = {}

    def publish(self, job: Job, event: dict) -> None:
        """Any thread: queue `event` (tagged with the job's id) for every open stream of the job's session."""
        tagged = {**event, "job": job.id}
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone, nobody is listening
            self.loop.call_soon_threadsafe(self._deliver, job.session, tagged)

    def _deliver(self, session: str, event: dict) -> None:
        for queue in self._streams.get(session, ()):
            queue.put_nowait(event)

    def subscribe(self, session: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._streams.setdefault(session, set()).add(queue)
        return queue

    def unsubscribe(self, session: str, queue: asyncio.Queue) -> None:
        streams = self._streams.get(session, set())
        streams.discard(queue)
        if not streams:
            self._streams.pop(session, None)
            self.loop.call_later(self.grace, self._check_gone, session)

    def _check_gone(self, session: str) -> None:
        if session not in self._streams:
            self.on_gone(session)
