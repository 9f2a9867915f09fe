"""nst-web's overhead: the same job through the server's HTTP API and through nst-run, back to back.

    flock /tmp/nst-cpu.lock .venv/bin/python bench/web_overhead.py [--size 384] [--iterations N] [--repeat 1]

The job: the demo pair (nst.web.examples) at --size, every other option at its default. Reported:
- loop: the optimisation loop's seconds (the logs' "seconds") through the server / through nst-run - 1: what the
  server adds inside the run (encoding previews, the event loop sending them, on the same cores);
- end to end: from the upload to the "done" event on the client, against nst-run's setup_seconds + seconds (the
  same work without the interpreter's start and the model's load, which the server does once);
- preview latency: from the iterate reaching the engine callback to its preview event arriving at the client
  (encoding included); median and max;
- preview encoding: previews, their total seconds.
Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def through_cli(model: Path, content: Path, style: Path, size: int, iterations: int | None, folder: Path) -> dict:
    log = folder / "cli.json"
    extra = ["--iterations", str(iterations)] if iterations else []
    exe = Path(sys.executable).parent / "nst-run"
    t0 = time.perf_counter()
    cmd = [str(exe), str(content), str(style), "-o", str(folder / "cli.png"), "--size", str(size), *extra]
    subprocess.run([*cmd, "--model", str(model), "--log-json", str(log), "-q"], check=True)
    wall = time.perf_counter() - t0
    record = json.loads(log.read_text())
    return {
        "wall": wall,
        "loop": record["seconds"],
        "setup": record["setup_seconds"],
        "work": record["setup_seconds"] + record["seconds"],
        "iterations": record["iterations"],
    }


def through_web(url: str, content: Path, style: Path, size: int, iterations: int | None) -> dict:
    from nst.web.client import Client

    client = Client(url, timeout=600)
    latencies: list[float] = []
    options = {"size": size, **({"iterations": iterations} if iterations else {})}
    with client.events() as stream:
        t0 = time.perf_counter()
        job = client.submit((content.name, content.read_bytes()), [(style.name, style.read_bytes())], **options)["job"]
        for event in stream:
            if event.get("job") != job:
                continue
            if event["type"] == "preview" and "t" in event:
                latencies.append(time.time() - event["t"])
            if event["type"] == "state" and event["state"] in ("done", "failed", "stopped", "cancelled"):
                break
        wall = time.perf_counter() - t0
    if event["state"] != "done":
        raise SystemExit(f"the web run ended {event['state']}: {event.get('error')}")
    log = json.loads(client.request(f"/api/jobs/{job}/log.json"))
    result = event["result"]
    return {
        "wall": wall,
        "loop": log["seconds"],
        "setup": log["setup_seconds"],
        "iterations": log["iterations"],
        "previews": result["previews"],
        "preview_seconds": result["preview_seconds"],
        "latency_median": statistics.median(latencies),
        "latency_max": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "vgg19")
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=None, help="first stage's iterations [default: nst-run's]")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (web, then nst-run)")
    args = parser.parse_args()

    from nst.engine import load_model
    from nst.web.app import create_app
    from nst.web.examples import demo_content, demo_style
    from nst.web.server import serve_in_thread

    with tempfile.TemporaryDirectory(prefix="nst-web-bench-") as tmp:
        folder = Path(tmp)
        content, style = folder / "cat.png", folder / "swirl.png"
        Image.fromarray(demo_content()).save(content)
        Image.fromarray(demo_style()).save(style)
        server, thread, url = serve_in_thread(create_app(load_model(args.model), folder / "web"))
        try:
            pairs = []
            for _ in range(args.repeat):
                web = through_web(url, content, style, args.size, args.iterations)
                cli = through_cli(args.model, content, style, args.size, args.iterations, folder)
                pairs.append({"web": web, "cli": cli})
                print(json.dumps(pairs[-1]), file=sys.stderr, flush=True)  # each pair as it ends: runs are long
        finally:
            server.stop()
            thread.join(30)
    loop = [p["web"]["loop"] / p["cli"]["loop"] - 1 for p in pairs]
    end = [p["web"]["wall"] / p["cli"]["work"] - 1 for p in pairs]
    print(
        json.dumps(
            {
                "size": args.size,
                "runs": pairs,
                "loop_overhead": loop,
                "end_to_end_overhead": end,
                "preview_share_of_loop": [p["web"]["preview_seconds"] / p["web"]["loop"] for p in pairs],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
