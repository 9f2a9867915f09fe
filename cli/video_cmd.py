"""nst-video: stylize a video without flicker (Ruder, Dosovitskiy & Brox 2016) on an exported model.

video() reads top to bottom: the command line -> the input, model and styles -> the plans -> the work folder
(resume) -> nst.video.stylize.stylize_video frame by frame with a bar, each frame saved as it finishes -> OUT
assembled from the saved frames with the input's audio -> the report. Every failure leaves through `fail` as one
line with its exit code; finished frames are kept on a failure and on Ctrl-C, and a rerun continues after them."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..engine.images import DEFAULT_MAX_PIXELS
from ..engine.manifest import DEFAULT_MODEL_DIR
from ..engine.options import OptionError, StylizeOptions, init_is_image
from ..video.options import VideoOptions
from .common import INTERRUPTED, USAGE_ERROR, MaxPixels, ModelDir, fail, guard, one_line_command, say
from .options_cli import dataclass_options, option_error, stylize_options
from .outputs import check_writable
from .run_report import check_report
from .video_work import SETTINGS, WorkFolder, default_work_dir, settings_record

PROG = "nst-video"
app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)

# nst-video's own options (the StylizeOptions and VideoOptions fields are generated from their dataclasses).
Input = Annotated[str, typer.Argument(help="A video file, a folder of frames or a quoted glob ('f/*.png').")]
Styles = Annotated[list[Path], typer.Option("--style", "-s", help="Style image (repeat for several).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output: .mp4, .webm, .gif, or a folder for PNG frames.")]
Start = Annotated[float, typer.Option(help="Start of the part to stylize, in seconds.")]
Duration = Annotated[Optional[float], typer.Option(help="Length of the part in seconds [default: to the end].")]
Fps = Annotated[float, typer.Option(help="Frame rate of a frames folder or glob (a file has its own).")]
FramesDir = Annotated[
    Optional[Path],
    typer.Option(
        help="Work folder for the finished frames, kept afterwards [default: OUT.frames beside OUT, removed once OUT "
        "is written]."
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Start again, replacing frames made with other settings.")]
LogJson = Annotated[Optional[Path], typer.Option(help="Append one JSON record per stylized frame (JSON lines).")]
Report = Annotated[
    Optional[Path], typer.Option(help="After the run, a picture: 8 frames and the warping error per frame.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


def open_input(path: str, start: float, duration: float | None, fps: float, max_pixels: int) -> Any:
    from ..video import VideoError, require_video_extra

    try:
        require_video_extra()
        from ..video.source import open_source

        return open_source(path, start, duration, max_pixels, fps)
    except VideoError as e:
        raise fail(PROG, str(e)) from None


def check_out(out: Path) -> None:
    """An unsupported extension is a command-line error (2, as nst-run's); a folder holding other files, 1."""
    from ..video import VideoOutputError
    from ..video.sink import KINDS, SUPPORTED_OUTPUT, check_output

    if out.suffix and out.suffix.lower() not in KINDS and not out.is_dir():
        raise fail(PROG, f"unsupported output extension {out.suffix!r} for {out}; use {SUPPORTED_OUTPUT}", USAGE_ERROR)
    try:
        check_output(out)
    except VideoOutputError as e:
        raise fail(PROG, str(e)) from None


def load_inputs(model_dir: Path, styles: list[Path], options: StylizeOptions, max_pixels: int) -> tuple[Any, list]:
    from ..engine import NSTError, load_image, load_model

    try:
        return load_model(model_dir, options.device, arena=options.arena), [load_image(p, max_pixels) for p in styles]
    except NSTError as e:
        raise fail(PROG, str(e)) from None


def make_plans(model: Any, frame_hw: tuple[int, int], styles: list, paths: list[Path], options: Any, video: Any) -> Any:
    from ..engine import NSTError, memory
    from ..video.stylize import frame_plans

    on_cpu = model.provider == "CPUExecutionProvider"
    try:
        plans = frame_plans(
            model.manifest,
            frame_hw,
            [s.shape[:2] for s in styles],
            options,
            video,
            weights_bytes=(model.path / model.manifest.weights.file).stat().st_size,
            available=memory.available_bytes() if on_cpu else None,
            style_names=[f"style image {p}" for p in paths],
        )
    except OptionError as e:
        raise option_error(PROG, e) from None
    except NSTError as e:
        raise fail(PROG, str(e)) from None
    for warning in plans[0].warnings:
        say(PROG, f"warning: {warning}")
    return plans


def frame_record(r: Any) -> dict:
    """The JSON record of a stylized frame (work folder and --log-json)."""
    res = r.result
    return {
        "frame": r.index + 1,
        "iterations": res.iterations,
        "evaluations": res.evaluations,
        "loss": res.loss,
        "terms": r.terms,
        "warping_error": r.warping_error,
        "consistent": r.consistent,
        "seconds": r.seconds,
        "early_stop": res.early_stop,
    }


def run_frames(
    source: Any,
    work: WorkFolder,
    done: int,
    model: Any,
    styles: list,
    options: Any,
    video: Any,
    log_json: Path | None,
    quiet: bool,
) -> int:
    """Stylize the frames after the `done` finished ones, saving each; returns the number of frames in the video."""
    from ..engine import NonFiniteError
    from ..engine.files import append_line
    from ..video import VideoError
    from ..video.stylize import stylize_video
    from .video_progress import VideoBar

    bar = VideoBar(source.count, quiet)
    frames = (f for _, f in source)
    results = stylize_video(
        model, frames, styles, options, video_options=video, callback=bar.iteration, resume=work.frames(done)
    )
    count = 0

    def kept() -> str:
        n = work.finished()
        frames = "the 1 finished frame is" if n == 1 else f"the {n} finished frames are"
        return f"{frames} kept in {work.path}; run the same command to continue"

    try:
        with bar:
            for r in results:
                count += 1
                if r.resumed:
                    bar.resumed()
                    continue
                record = frame_record(r)
                work.save(r.index, r.image, record)
                if log_json is not None:
                    append_line(log_json, record)
                bar.frame_done(r.seconds)
    except KeyboardInterrupt:
        say(PROG, f"interrupted; {kept()}")
        raise typer.Exit(INTERRUPTED) from None
    except (VideoError, NonFiniteError) as e:
        raise fail(PROG, f"{e}; {kept()}") from None
    except OSError as e:
        raise fail(PROG, f"cannot write a frame to {work.path} ({e.strerror or e}); {kept()}") from None
    return count


def assemble_output(source: Any, work: WorkFolder, count: int, out: Path) -> None:
    from ..engine import load_image
    from ..video import VideoError
    from ..video.sink import assemble
    from ..video.source import FileSource

    audio = source.path if isinstance(source, FileSource) and source.audio else None
    fps = source.rate if isinstance(source, FileSource) else source.fps
    try:
        assemble((load_image(work.frame(i)) for i in range(count)), out, fps, audio, source.start, source.duration)
    except KeyboardInterrupt:
        say(PROG, f"interrupted while writing {out}; the frames are kept in {work.path}; run the same command again")
        raise typer.Exit(INTERRUPTED) from None
    except VideoError as e:
        raise fail(PROG, f"{e}; the frames are kept in {work.path}") from None
    except OSError as e:
        raise fail(PROG, f"cannot write {out} ({e.strerror or e}); the frames are kept in {work.path}") from None


def write_video_report(path: Path | None, work: WorkFolder, count: int, title: str) -> None:
    if path is None:
        return
    from ..engine import load_image
    from ..views.grid import save_picture
    from ..views.video_report import render_video_report, strip_indices

    errors: list[float | None] = [None] * count
    for rec in work.records():
        if 1 <= rec.get("frame", 0) <= count:
            errors[rec["frame"] - 1] = rec.get("warping_error")
    strip = [(i, load_image(work.frame(i))) for i in strip_indices(count)]
    try:
        save_picture(render_video_report(strip, errors, title), path)
    except OSError as e:
        raise fail(PROG, f"cannot write {path} ({e.strerror or e}); check the free space and permissions") from None


@app.command(
    help="Stylize a video (a file, a folder of frames or a quoted glob) with STYLE images, without flicker (Ruder et "
    "al. 2016), and write -o OUT: .mp4 (H.264), .webm (VP9), .gif or a folder of PNGs, at the input's frame rate, "
    "with its audio.",
    epilog="Every nst-run option applies to every frame (frame 1 as a still run, later frames one stage of "
    "--frame-iterations at --size). Finished frames are saved in OUT.frames/ (or --frames-dir) as they finish: "
    "rerunning the same command continues after the last one. Exit codes: 0 done, 1 failed (one 'nst-video: error:' "
    "line; finished frames kept), 2 bad command line, 130 Ctrl-C (finished frames kept).",
    cls=one_line_command(PROG),
)
@guard(PROG, "interrupted before the first frame; nothing was written")
@dataclass_options(VideoOptions, "video_options", PROG)
@stylize_options(PROG)
def video(
    input: Input,
    style: Styles,
    out: Out,
    start: Start = 0.0,
    duration: Duration = None,
    fps: Fps = 24.0,
    frames_dir: FramesDir = None,
    force: Force = False,
    model: ModelDir = DEFAULT_MODEL_DIR,
    log_json: LogJson = None,
    report: Report = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    quiet: Quiet = False,
    *,
    options: StylizeOptions,
    video_options: VideoOptions,
) -> None:
    if init_is_image(options.init):
        raise fail(
            PROG,
            f"--init {options.init!r}: frame 1 starts from content, noise or mix:R (later frames start from the "
            "previous stylized frame); give one of those",
            USAGE_ERROR,
        )
    source = open_input(input, start, duration, fps, max_pixels)
    check_out(out)
    check_report(PROG, report)
    nst_model, styles = load_inputs(model, style, options, max_pixels)
    first, _ = make_plans(nst_model, source.size, styles, style, options, video_options)
    work = WorkFolder(frames_dir if frames_dir is not None else default_work_dir(out))
    for path in (out.with_name(out.name + ".probe"), log_json, work.path / SETTINGS):
        problem = path is not None and check_writable(path)
        if problem:
            raise fail(PROG, problem)
    try:
        done = work.start(settings_record(source, style, nst_model, options, video_options, first.size), force)
    except (ValueError, OSError) as e:
        raise fail(PROG, str(e)) from None
    if log_json is not None and done == 0:
        log_json.unlink(missing_ok=True)  # a new run: the log starts again with it
    t0 = time.perf_counter()
    count = run_frames(source, work, done, nst_model, styles, options, video_options, log_json, quiet)
    assemble_output(source, work, count, out)
    records = work.records()
    h, w = first.size
    title = f"{Path(input).name} in the style of {' + '.join(p.name for p in style)}: {w}x{h} px, {count} frames"
    write_video_report(report, work, count, title)
    if frames_dir is None:
        work.remove()
    if not quiet:
        errors = [r["warping_error"] for r in records if r.get("warping_error") is not None]
        mean = sum(errors) / len(errors) if errors else math.nan
        typer.echo(
            f"{count} frames ({count - done} stylized now in {time.perf_counter() - t0:.0f} s), "
            f"mean warping error {mean:.3g} -> {out}"
        )


def main() -> None:
    app(prog_name=PROG)
