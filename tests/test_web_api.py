"""nst-web without a browser: the job queue on its own (no HTTP, a fake runner), the runner on a real model, then the
HTTP API of a server started in a thread (uploads, server-sent events, Stop, downloads, queueing, tab closing), and
the nst-web command's start and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nst.web.client import ApiError, Client
from nst.web.jobs import CANCELLED, DONE, FAILED, QUEUED, RUNNING, STOPPED, Job, JobFailed, JobQueue

# --- the queue, with a fake runner ------------------------------------------------------------------------------------


class Recorder:
    """A runner whose jobs take `seconds` unless stopped, and a listener: what ran, in which order, how many at once."""

    def __init__(self, seconds: float = 0.2):
        self.seconds, self.order, self.events = seconds, [], []
        self.active = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, job, emit):
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        self.order.append(job.work)
        try:
            if job.work == "fails":
                raise JobFailed("too big", fits=128)
            if job.work == "bug":
                raise KeyError("oops")
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                emit({"type": "progress"})
                if job.should_stop():
                    return "partial"
                time.sleep(0.01)
            return "whole"
        finally:
            with self.lock:
                self.active -= 1

    def listen(self, job, event):
        self.events.append((job.work, event))


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def queue():
    recorder = Recorder()
    q = JobQueue(recorder, recorder.listen)
    q.recorder = recorder
    yield q
    q.close()


def test_queue_runs_jobs_in_order_one_at_a_time(queue):
    jobs = [queue.submit(Job("s1", f"job{i}")) for i in range(3)]
    assert [queue.position(j) for j in jobs] in ([0, 1, 2], [1, 2, 3])
    wait_until(lambda: all(j.state == DONE for j in jobs))
    assert queue.recorder.order == ["job0", "job1", "job2"]
    assert queue.recorder.most == 1
    assert all(j.output == "whole" and queue.position(j) == -1 for j in jobs)
    # the last job was told it was second in the queue, then that it runs
    states = [e for w, e in queue.recorder.events if w == "job2" and e["type"] == "state"]
    assert {"type": "state", "state": QUEUED, "position": 2} in states
    assert states[-2:] == [
        {"type": "state", "state": RUNNING, "position": 0},
        {"type": "state", "state": DONE, "error": None},
    ]


def test_stop_cancels_a_waiting_job_and_stops_a_running_one(queue):
    queue.recorder.seconds = 30
    first, second, third = (queue.submit(Job("s", w)) for w in ("first", "second", "third"))
    wait_until(lambda: first.state == RUNNING)
    assert queue.stop(second.id)
    assert second.state == CANCELLED and queue.position(third) == 1
    assert queue.stop(first.id)  # keeps what it has: stopped, with an output
    wait_until(lambda: first.state == STOPPED)
    assert first.output == "partial"
    wait_until(lambda: third.state == RUNNING)
    assert queue.recorder.order == ["first", "third"]  # the cancelled job never ran
    assert not queue.stop(second.id) and not queue.stop("no-such-job")


def test_cancel_session_frees_the_queue(queue):
    queue.recorder.seconds = 30
    mine = [queue.submit(Job("tab-a", w)) for w in ("a1", "a2")]
    other = queue.submit(Job("tab-b", "b1"))
    wait_until(lambda: mine[0].state == RUNNING)
    assert queue.cancel_session("tab-a") == 2
    wait_until(lambda: other.state == RUNNING)
    assert [j.state for j in mine] == [CANCELLED, CANCELLED] and all(j.cancelled for j in mine)
    assert [j.id for j in queue.jobs_of("tab-b")] == [other.id]


def test_failures_are_reported_and_the_queue_goes_on(queue):
    failing, buggy, fine = (queue.submit(Job("s", w)) for w in ("fails", "bug", "fine"))
    wait_until(lambda: fine.state == DONE)
    assert failing.state == FAILED and failing.error == "too big" and failing.details == {"fits": 128}
    assert buggy.state == FAILED and "unexpected KeyError" in buggy.error and "bug" in buggy.error
    last = [e for w, e in queue.recorder.events if w == "fails"][-1]
    assert last == {"type": "state", "state": FAILED, "error": "too big", "fits": 128}


def test_close_cancels_waiting_and_stops_running():
    recorder = Recorder(seconds=60)
    q = JobQueue(recorder)
    running, waiting = q.submit(Job("s", "long")), q.submit(Job("s", "next"))
    wait_until(lambda: running.state == RUNNING)
    t0 = time.monotonic()
    q.close()
    assert time.monotonic() - t0 < 5
    assert running.state == CANCELLED and waiting.state == CANCELLED
    with pytest.raises(RuntimeError):
        q.submit(Job("s", "late"))


# --- the runner on a real model, without HTTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_model(model_dir):
    from nst.engine import load_model

    return load_model(model_dir, "cpu")


def test_runner_reports_previews_and_writes_nst_runs_log(loaded_model, synthetic_image, tmp_path, nst_run, images_dir):
    from nst.engine import StylizeOptions
    from nst.web.runner import StylizeRunner, Work

    content, style = synthetic_image(60, 80, 0), synthetic_image(64, 64, 5)
    work = Work(content, [style], "cat.png", ["swirl.png"], StylizeOptions(size=64, iterations=6))
    events = []
    output = StylizeRunner(loaded_model, tmp_path, preview_every=2)(Job("s", work), events.append)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "plan" and kinds.count("progress") == 6 and kinds[-1] == "result"
    previews = [e for e in events if e["type"] == "preview"]
    assert len(previews) >= 4 and previews[-1]["final"]  # iterations 1, 2, 4, 6 and the final image
    assert previews[0]["image"].startswith("data:image/jpeg;base64,")
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 7))
    p = progress[-1]
    assert p["loss"] == pytest.approx(sum(p["terms"].values()), rel=1e-5)
    assert np.asarray(Image.open(output.png)).shape == (48, 64, 3)
    log = json.loads(output.log.read_text())
    cli_log = tmp_path / "cli.json"
    nst_run(loaded_model.path, images_dir / "content.png", images_dir / "style1.png", "-o", tmp_path / "cli.png",
            "--iterations", 2, "--log-json", cli_log)  # fmt: skip
    assert set(log) == set(json.loads(cli_log.read_text()))  # the same record as nst-run --log-json
    assert log["options"]["content"] == "cat.png" and log["options"]["styles"] == ["swirl.png"]
    assert log["iterations"] == 6 and len(log["history"]) == 6


# --- the HTTP API -----------------------------------------------------------------------------------------------------


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def web_extra():
    """The server's tests skip without the web extra; the queue's and the runner's need only the runtime."""
    for module in ("starlette", "uvicorn", "multipart"):
        pytest.importorskip(module, reason="nst-web needs the web extra: pip install 'nst[web]'")


@pytest.fixture(scope="module")
def serve(loaded_model, tmp_path_factory, web_extra):
    """serve(**create_app keywords) -> the URL of a server on a free port, in a thread; all stopped at the end."""
    from nst.web.app import create_app
    from nst.web.server import serve_in_thread

    started = []

    def serve(**kw):
        kw = {"preview_every": 2, "grace": 0.5, **kw}
        app = create_app(loaded_model, tmp_path_factory.mktemp("web"), **kw)
        server, thread, url = serve_in_thread(app)
        started.append((server, thread))
        return url

    yield serve
    for server, thread in started:
        server.stop()
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def url(serve):
    return serve()


@pytest.fixture(scope="module")
def inputs(synthetic_image):
    return ("photo.png", png(synthetic_image(60, 80, 0))), [("style.png", png(synthetic_image(64, 64, 5)))]


def follow(stream, job, until=("done", "stopped", "failed", "cancelled"), on_event=None):
    """The events of `job` from a tab's stream until it finishes; on_event sees every event of the tab."""
    seen = []
    for event in stream:
        if on_event is not None:
            on_event(event)
        if event.get("job") != job:
            continue
        seen.append(event)
        if event["type"] == "state" and event["state"] in until:
            return seen
    raise AssertionError(f"the stream ended before {job} finished: {seen[-3:]}")


def test_a_run_streams_previews_and_downloads(url, inputs):
    client = Client(url)
    with client.events() as stream:
        submitted = client.submit(*inputs, size=64, iterations=8)
        events = follow(stream, submitted["job"])
    assert events[-1]["state"] == DONE and events[-1]["result"]["iterations"] == 8
    previews = [e for e in events if e["type"] == "preview"]
    assert len(previews) >= 2 and len({e["image"] for e in previews}) >= 2
    progress = [e for e in events if e["type"] == "progress"]
    assert {"loss", "terms", "stage", "size", "iteration"} <= set(progress[-1])
    image = Image.open(io.BytesIO(client.request(f"/api/jobs/{submitted['job']}/result.png")))
    assert image.format == "PNG" and image.size == (64, 48)
    log = json.loads(client.request(f"/api/jobs/{submitted['job']}/log.json"))
    assert log["options"]["size"] == 64 and log["iterations"] == 8 and len(log["history"]) == 8
    assert Image.open(io.BytesIO(client.request(f"/api/jobs/{submitted['job']}/thumb.jpg"))).format == "JPEG"
    with client.events() as again:  # a reload of the tab lists its runs
        runs = next(iter(again))
    assert runs["type"] == "runs" and [r["job"] for r in runs["runs"]] == [submitted["job"]]


def test_bad_uploads_are_refused_and_the_server_goes_on(url, inputs, tmp_path):
    client = Client(url)
    content, styles = inputs
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(bomb)  # 100 MP of nothing: a few kB
    for bad, words in (
        (("notes.png", b"this is not an image"), "not an image"),
        (("cut.png", content[1][: len(content[1]) // 2]), "truncated or corrupt"),
        (("bomb.png", bomb.read_bytes()), "decompression-bomb"),
    ):
        with pytest.raises(ApiError) as e:
            client.submit(bad, styles, size=64)
        assert e.value.status == 400 and words in e.value.body["error"] and bad[0] in e.value.body["error"]
        assert "/tmp" not in e.value.body["error"] and str(tmp_path) not in e.value.body["error"]
    with pytest.raises(ApiError) as e:
        client.submit(content, styles, size=8)  # too small for relu5_1: refused at once, with the size that works
    assert e.value.status == 400 and e.value.body["smallest"] > 8
    with pytest.raises(ApiError) as e:
        client.submit(content, styles, size="big")
    assert "size must be a number" in e.value.body["error"]
    with client.events() as stream:  # the next request still works
        job = client.submit(content, styles, size=64, iterations=2)["job"]
        assert follow(stream, job)[-1]["state"] == DONE


def grey_png(h: int, w: int, left: bool) -> bytes:
    """A mask: the left (or right) half white, the rest black."""
    mask = np.zeros((h, w, 3), np.float32)
    mask[:, : w // 2] = 1.0
    return png(mask if left else 1.0 - mask)


def test_masks_per_style_run_and_the_log_records_the_regions(url, inputs, synthetic_image):
    client = Client(url)
    content, _ = inputs  # 60 x 80 (h, w)
    styles = [("swirl.png", png(synthetic_image(64, 64, 5))), ("stripes.png", png(synthetic_image(48, 64, 7)))]
    masks = [("left.png", grey_png(60, 80, True)), ("right.png", grey_png(30, 40, False))]  # any size, same aspect
    source = [None, ("top.png", png(np.ones((48, 64, 3), np.float32)))]  # in the second style's frame
    with client.events() as stream:
        job = client.submit(content, styles, masks=masks, source_masks=source, size=64, iterations=3)["job"]
        assert follow(stream, job)[-1]["state"] == DONE
    log = json.loads(client.request(f"/api/jobs/{job}/log.json"))
    assert log["options"]["style_masks"] == ["left.png", "right.png"]
    assert log["options"]["style_source_masks"] == ["none", "top.png"]
    regions = log["resolved"]["regions"]
    pairs = [(r["mask"], r["source_mask"]) for r in regions["styles"]]
    assert pairs == [("left.png", "none"), ("right.png", "top.png")]
    assert all(0.3 < c < 0.7 for r in regions["styles"] for c in r["coverage"].values())  # about half each
    assert regions["uncovered"] < 0.1 and log["iterations"] == 3


def test_bad_masks_are_refused_and_the_next_job_works(url, inputs):
    client = Client(url)
    content, styles = inputs
    for field, bad, words in (
        ("masks", ("tall.png", grey_png(80, 20, True)), "mask tall.png is 20x80 px but the content is 80x60 px"),
        ("masks", ("black.png", png(np.zeros((60, 80, 3), np.float32))), "mask black.png covers nothing of layer"),
        ("source_masks", ("notes.png", b"not an image"), "source mask: notes.png is not an image"),
    ):
        with pytest.raises(ApiError) as e:
            client.submit(content, styles, size=64, **{field: [bad]})
        assert e.value.status == 400 and e.value.body["error"].startswith(words), e.value.body
        assert "\n" not in e.value.body["error"] and "/tmp" not in e.value.body["error"]
    with client.events() as stream:  # the server goes on
        job = client.submit(content, styles, masks=[("left.png", grey_png(60, 80, True))], size=64, iterations=2)
        assert follow(stream, job["job"])[-1]["state"] == DONE


def test_upload_limit(serve, inputs):
    client = Client(serve(max_upload_mb=0.001))  # 1 kB
    with pytest.raises(ApiError) as e:
        client.submit(*inputs)
    assert e.value.status == 413 and "photo.png" in e.value.body["error"] and "--max-upload-mb" in e.value.body["error"]


def test_a_size_beyond_memory_is_refused_with_the_size_that_fits(url, inputs):
    client = Client(url)
    with client.events() as stream:
        job = client.submit(*inputs, size=30000)["job"]
        last = follow(stream, job)[-1]
    assert last["state"] == FAILED and "GiB" in last["error"] and "try size" in last["error"]
    assert 64 < last["fits"] < 30000


def test_two_jobs_queue_in_order(url, inputs):
    client = Client(url)
    with client.events() as stream:
        first = client.submit(*inputs, size=64, iterations=30)["job"]
        second = client.submit(*inputs, size=64, iterations=2)
        assert second["position"] >= 1
        order = []
        follow(stream, second["job"], on_event=lambda e: e["type"] == "state" and order.append((e["job"], e["state"])))
    assert (second["job"], QUEUED) in order
    firsts = [s for j, s in order if j == first]
    assert firsts[-1] == DONE
    assert order.index((first, DONE)) < order.index((second["job"], RUNNING))


def test_stop_keeps_the_best_image(url, inputs):
    client = Client(url)
    with client.events() as stream:
        job = client.submit(*inputs, size=64, iterations=500)["job"]
        previews = []

        def on_event(e):
            if e["type"] == "preview" and e["job"] == job:
                previews.append(e)
                if len(previews) == 2:
                    client.stop(job)

        events = follow(stream, job, on_event=on_event)
    assert events[-1]["state"] == STOPPED and events[-1]["result"]["iterations"] < 500
    assert Image.open(io.BytesIO(client.request(f"/api/jobs/{job}/result.png"))).size == (64, 48)


def test_closing_a_tab_cancels_its_job_and_frees_the_queue(url, inputs):
    closing, waiting = Client(url), Client(url)
    with waiting.events() as stream:
        with closing.events() as gone:
            long_job = closing.submit(*inputs, size=64, iterations=5000)["job"]
            follow(gone, long_job, until=(RUNNING,))
            short_job = waiting.submit(*inputs, size=64, iterations=2)["job"]
        t0 = time.monotonic()
        events = follow(stream, short_job)  # the tab went away: its run is cancelled within the grace period
    assert events[-1]["state"] == DONE and time.monotonic() - t0 < 60
    with closing.events() as back:
        runs = next(iter(back))["runs"]
    assert [(r["job"], r["state"]) for r in runs] == [(long_job, CANCELLED)]


def test_pages_and_examples(url):
    client = Client(url)
    assert b'<script src="/app.js">' in client.request("/")
    assert b"EventSource" in client.request("/app.js")
    config = json.loads(client.request("/api/config"))
    from nst.engine import StylizeOptions

    assert config["options"]["iterations"] == {
        "default": StylizeOptions.default("iterations"),
        "help": StylizeOptions.help("iterations"),
    }
    assert config["options"]["preserve_colors"]["choices"] == ["none", "luminance", "histogram"]
    beta = config["options"]["style_weight"]["default"]
    assert config["options"]["style_weight"]["range"] == pytest.approx([beta / 100, beta * 100])
    for name in ("content", "style"):
        assert Image.open(io.BytesIO(client.request(f"/api/examples/{name}.png"))).mode == "RGB"
    with pytest.raises(ApiError) as e:
        client.request("/api/jobs/0123456789abcdef/result.png")
    assert e.value.status == 404


# --- the command ------------------------------------------------------------------------------------------------------


def test_busy_port_is_one_line(model_dir, runner, error_line, web_extra):
    from nst.cli.web_cmd import app
    from nst.web.server import listen

    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        line = error_line(runner.invoke(app, ["--model", str(model_dir), "--port", str(port)]), 1, "nst-web")
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


def test_ctrl_c_mid_run_stops_cleanly_and_leaves_no_files(model_dir, tmp_path, inputs, web_extra):
    exe = Path(sys.executable).parent / "nst-web"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen(
        [str(exe), "--model", str(model_dir), "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("nst-web: serving http://0.0.0.0:"), line
        port = line.split("http://0.0.0.0:")[1].split("/")[0]
        assert len(list(scratch.glob("nst-web-*"))) == 1  # the results' folder
        client = Client(f"http://127.0.0.1:{port}")
        with client.events() as stream:
            job = client.submit(*inputs, size=64, iterations=5000)["job"]
            follow(stream, job, until=(RUNNING,))
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines()[0].startswith("nst-web: warning: listening on 0.0.0.0: there is no authentication")
    assert stderr.splitlines()[-1] == "nst-web: stopped; the results' temporary folder was removed"
    assert list(scratch.glob("nst-web-*")) == []
