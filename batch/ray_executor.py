"""--executor ray: Ray actors, one per worker process, each keeping its model loaded; a local Ray instance when no
--address is given, or a running cluster (`ray start --head` on one machine, `ray start --address ...` on the others).

Nothing assumes a shared file system: the model directory goes to the workers once through Ray's object store (a
worker that already sees the same model directory, with the same manifest, uses it in place), its sha256s are checked
there (engine.manifest.read_manifest), the input images travel as bytes and the outputs come back as bytes for the
driver to write. Ray sets OMP_NUM_THREADS=1 in its workers; onnxruntime's intra-op threads are set explicitly
(--threads, default --cpus-per-job). Every node needs nst installed, same version: pip install 'nst[cpu,ray]'."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..engine.errors import ModelError, NSTError
from ..engine.files import sha256_file
from ..engine.manifest import MANIFEST_FILE, read_manifest
from ..engine.options import NO_MASK, StylizeOptions, init_is_image
from .worker import JobRunner, Outcome, Task, describe, failed, one_line, worker_id

MAX_ATTEMPTS = 2
RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install 'nst[ray]'"


class BatchSetupError(NSTError):
    """The batch cannot start (Ray missing or unreachable, the model unusable on a worker)."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BatchSetupError(RAY_MISSING) from None
    return ray


def model_files(model_dir: Path) -> dict[str, bytes]:
    """The files of a model directory that a worker needs: manifest.json and the files it names."""
    manifest = read_manifest(model_dir)
    names = [MANIFEST_FILE, manifest.features.file, manifest.gradient.file, manifest.weights.file]
    return {name: (model_dir / name).read_bytes() for name in dict.fromkeys(names)}


def materialize(files: Mapping[str, bytes], manifest_sha: str, root: str | Path | None = None) -> Path:
    """Write a shipped model directory on this node (once per node: `<tmp>/nst-model-<sha>`), check its manifest is
    the driver's and every file's sha256 (read_manifest), return its path. ModelError if anything differs."""
    final = Path(root or tempfile.gettempdir()) / f"nst-model-{manifest_sha[:16]}"
    if not (final / MANIFEST_FILE).is_file():
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        for name, data in files.items():
            (staging / name).write_bytes(data)
        try:
            os.rename(staging, final)
        except OSError:  # another worker on this node got there first
            for p in staging.iterdir():
                p.unlink()
            staging.rmdir()
    if sha256_file(final / MANIFEST_FILE) != manifest_sha:
        raise ModelError(f"the model shipped to worker {worker_id()} has a different manifest.json; re-run the batch")
    read_manifest(final)
    return final


class Stylizer:
    """The Ray actor (wrapped by ray.remote in RayExecutor): a JobRunner on a model directory it can read."""

    def __init__(self, model_dir: str, manifest_sha: str, payload: list[Any], threads: int, ship: bool | None = None):
        local = Path(model_dir)
        same = (local / MANIFEST_FILE).is_file() and sha256_file(local / MANIFEST_FILE) == manifest_sha
        self.shipped = (not same) if ship is None else ship
        if self.shipped:  # `payload` is [ObjectRef]: inside a list, so Ray fetches it only here, when needed
            import ray

            local = materialize(ray.get(payload[0]), manifest_sha)
        else:
            read_manifest(local)  # the sha256 of every file
        self.runner = JobRunner(local, threads)

    def ready(self, options: Any) -> dict[str, Any]:
        """Load the model for the batch's options; how long that took, and where."""
        self.runner.model(options)
        return {"worker": worker_id(), "load_seconds": self.runner.load_seconds, "shipped": self.shipped}

    def run(self, task: Task) -> Outcome:
        import ray

        files = {path: ray.get(ref) for path, ref in (task.files or {}).items()}
        return self.runner.run(dataclasses.replace(task, files=files))


def _inputs(task: Task) -> list[str]:
    masks = [*(task.options.style_masks or ()), *(task.options.style_source_masks or ())]
    return (
        [task.content, task.style]
        + ([task.options.init] if init_is_image(task.options.init) else [])
        + [m for m in masks if m != NO_MASK]
    )


def _cause(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    return describe(cause) if isinstance(cause, BaseException) else one_line(str(error).splitlines()[-1])


class RayExecutor:
    """results(tasks) yields (task, outcome, attempts) as jobs finish; `running` counts the jobs in progress."""

    name = "ray"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        address: str | None = None,
        workers: int | None = None,
        threads: int | None = None,
        cpus_per_job: float = 1.0,
        gpus_per_job: float = 0.0,
        options: Any = None,
        num_cpus: int | None = None,
        ship_model: bool | None = None,
    ):
        """ship_model: None ships the model to workers that do not see the same model directory; True always ships
        it (a test of the path a multi-machine cluster takes)."""
        self.ray = import_ray()
        self.model_dir, self.address, self.workers = Path(model_dir), address, workers
        self.cpus, self.gpus = cpus_per_job, gpus_per_job
        self.threads = threads or max(1, int(cpus_per_job))
        self.options, self.num_cpus, self.ship_model = options or StylizeOptions(), num_cpus, ship_model
        self.started_ray = False
        self.actors: list[Any] = []
        self.pending: dict[Any, tuple[int, Task, int]] = {}  # ObjectRef -> (actor index, task, attempt)
        self.setup: list[dict[str, Any]] = []  # per worker: load_seconds, shipped
        self.refs: dict[str, Any] = {}

    @property
    def running(self) -> int:
        return len(self.pending)

    def _init(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
            try:
                if self.address:
                    ray.init(address=self.address, **kwargs)
                else:
                    ray.init(num_cpus=self.num_cpus, **kwargs)
            except Exception as e:  # ConnectionError, RuntimeError, ... from Ray
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise BatchSetupError(f"cannot start or reach {where} ({one_line(str(e))[:300]})") from None
            self.started_ray = True

    def _count(self, jobs: int) -> int:
        if self.workers:
            return min(self.workers, jobs)
        resources = self.ray.cluster_resources()
        n = int(resources.get("CPU", 1) // self.cpus) if self.cpus else jobs
        if self.gpus:
            n = min(n, int(resources.get("GPU", 0) // self.gpus))
        if n < 1:
            raise BatchSetupError(
                f"the Ray cluster has {resources.get('CPU', 0)} CPUs and {resources.get('GPU', 0)} "
                "GPUs: not enough for one job at this --cpus-per-job / --gpus-per-job"
            )
        return max(1, min(n, jobs))

    def _actor(self) -> Any:
        cls = self.ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=0)(Stylizer)
        return cls.remote(str(self.model_dir.resolve()), self.sha, [self.payload], self.threads, self.ship_model)

    def start(self, jobs: int) -> None:
        """Connect (or start Ray here), start the workers and load the model in each."""
        if self.actors:
            return
        self._init()
        self.sha = sha256_file(self.model_dir / MANIFEST_FILE)
        self.payload = self.ray.put(model_files(self.model_dir))
        self.actors = [self._actor() for _ in range(self._count(jobs))]
        try:
            self.setup = self.ray.get([a.ready.remote(self.options) for a in self.actors])
        except self.ray.exceptions.RayError as e:
            raise BatchSetupError(f"a Ray worker could not load the model: {_cause(e)}") from None

    def _ship(self, task: Task) -> Task:
        """The task with its input files as object-store references (each file put once while jobs need it)."""
        paths = _inputs(task)
        for path in paths:
            if path not in self.refs:
                self.refs[path] = self.ray.put(Path(path).read_bytes())
        return dataclasses.replace(task, files={p: self.refs[p] for p in paths})

    def _release(self, task: Task, queue: deque[tuple[Task, int]]) -> None:
        """Drop the object-store copies of a finished task's inputs that no queued or running task still needs."""
        waiting = [t for t, _ in queue] + [t for _, t, _ in self.pending.values()]
        needed = {p for t in waiting for p in _inputs(t)}
        for path in _inputs(task):
            if path not in needed:
                self.refs.pop(path, None)

    def results(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome, int]]:
        queue: deque[tuple[Task, int]] = deque((task, 1) for task in tasks)
        try:
            self.start(len(queue))
            idle = list(range(len(self.actors)))
            while queue or self.pending:
                while idle and queue:
                    index, (task, attempts) = idle.pop(), queue.popleft()
                    try:
                        ref = self.actors[index].run.remote(self._ship(task))
                    except OSError as e:  # the driver cannot read an input: the job's failure
                        idle.append(index)
                        yield task, failed(describe(e), 0.0), attempts
                        continue
                    self.pending[ref] = (index, task, attempts)
                ready, _ = self.ray.wait(list(self.pending), num_returns=1)
                for ref in ready:
                    index, task, attempts = self.pending.pop(ref)
                    idle.append(index)
                    done = self._collect(ref, index, task, attempts, queue)
                    if done is not None:
                        self._release(task, queue)
                        yield done
        finally:
            self.close()

    def _collect(
        self, ref: Any, index: int, task: Task, attempts: int, queue: deque[tuple[Task, int]]
    ) -> tuple[Task, Outcome, int] | None:
        exceptions = self.ray.exceptions
        try:
            return task, self.ray.get(ref), attempts
        except exceptions.RayTaskError as e:  # raised inside run(): JobRunner catches job errors, so a bug
            return task, failed(_cause(e), 0.0), attempts
        except exceptions.RayError as e:  # the actor's process died (killed, out of memory, node lost)
            self.actors[index] = self._actor()
            if attempts < MAX_ATTEMPTS:
                queue.appendleft((task, attempts + 1))
                return None
            return task, failed(f"the Ray worker died on {attempts} attempts ({_cause(e)[:200]})", 0.0), attempts

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):  # already gone
                self.ray.kill(actor)
        self.actors, self.pending, self.refs = [], {}, {}
        if self.started_ray:
            self.ray.shutdown()
            self.started_ray = False
