"""nst.batch: many content x style jobs on a local process pool (default) or a Ray cluster; resumable, each failure
recorded without stopping the others. No torch on this path; Ray only when asked for."""

from .api import EXECUTORS, BatchRun, JobResult, make_executor, run_batch
from .jobs import Job, JobError, build_jobs
from .record import RECORD_FILE, BatchLockedError

__all__ = [
    "EXECUTORS",
    "RECORD_FILE",
    "BatchLockedError",
    "BatchRun",
    "Job",
    "JobError",
    "JobResult",
    "build_jobs",
    "make_executor",
    "run_batch",
]
