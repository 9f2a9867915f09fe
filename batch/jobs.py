"""What a batch does: CONTENTS x --style (and `--pairs FILE.csv` rows) -> Jobs with deterministic output names.

CONTENTS and styles are files, folders (their image files, sorted, not recursive) or globs (sorted matches). Each job
is one content image with one style image, written to `OUTDIR/<content-stem>__<style-stem>.png`. Duplicates (the
same files with the same per-row options) are dropped, the first kept. Jobs whose names clash (`a/x.jpg` and
`b/x.png`, or one pair with two option rows) all get `__<8 hex digits>` appended, a hash of their files and options,
so a name never depends on the order or on which other jobs exist beside them."""

from __future__ import annotations

import csv
import dataclasses
import glob
import hashlib
import json
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from ..engine.options import NO_MASK, OptionError, StylizeOptions, field_named, flag, is_path_list, option_names

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif")
OUTPUT_SUFFIX = ".png"
_GLOB_CHARS = "*?["
Overrides = tuple[tuple[str, Any], ...]  # per-row options from --pairs, sorted by name
Pair = tuple[Path, Path, Overrides]  # content, style, overrides


class JobError(ValueError):
    """The job list cannot be built (a missing file, an empty glob, a malformed pairs file): a command-line error."""


@dataclass(frozen=True)
class Job:
    content: Path
    style: Path
    out: Path  # OUTDIR/<name>
    overrides: tuple[tuple[str, Any], ...] = ()  # per-row options from --pairs, sorted by name

    @property
    def name(self) -> str:
        return self.out.name

    def options(self, base: StylizeOptions) -> StylizeOptions:
        """The job's options: the batch's, with this job's --pairs overrides."""
        return dataclasses.replace(base, **dict(self.overrides)) if self.overrides else base

    def key(self) -> tuple[str, str, str]:
        """Identity for duplicates and name clashes: the resolved files and the overrides."""
        return str(self.content.resolve()), str(self.style.resolve()), json.dumps(self.overrides)


def _has_glob(item: str) -> bool:
    return any(c in item for c in _GLOB_CHARS)


def _is_output_name(name: str) -> bool:
    return name.endswith(OUTPUT_SUFFIX) and "__" in name[: -len(OUTPUT_SUFFIX)]


def _images_in(folder: Path, exclude: Path | None) -> list[Path]:
    found = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    if exclude is not None:  # never take a previous batch's outputs (OUTDIR/<c>__<s>.png) as new inputs
        found = [p for p in found if not (p.parent.resolve() == exclude.resolve() and _is_output_name(p.name))]
    return found


def expand_paths(items: Iterable[str | Path], what: str, exclude: Path | None = None) -> list[Path]:
    """Files as given; folders -> their image files; globs -> their sorted matches (folders among them expanded).
    JobError for a path that does not exist, a glob that matches nothing or a folder with no images."""
    paths: list[Path] = []
    for item in items:
        text = str(item)
        if _has_glob(text) and not Path(text).exists():
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise JobError(f"{what} {text!r} matches no file; check the pattern (quote it so the shell does not)")
            for m in matches:
                paths.extend(_images_in(m, exclude) if m.is_dir() else [m])
            continue
        path = Path(text)
        if path.is_dir():
            images = _images_in(path, exclude)
            if not images:
                raise JobError(f"{what} folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(images)
        elif path.exists():
            paths.append(path)
        else:
            raise JobError(f"{what} {path} does not exist; check the path")
    return paths


_HINTS = typing.get_type_hints(StylizeOptions)


def _kinds(hint: Any) -> list[Any]:
    """The alternatives of a field's type, None left out: `Literal[...] | tuple[float, ...]` -> both."""
    if get_origin(hint) in (Union, UnionType):
        return [a for a in get_args(hint) if a is not type(None)]
    return [hint]


def _parse_as(kind: Any, text: str) -> Any:
    """text as `kind`; ValueError if it is not one."""
    if get_origin(kind) is Literal:
        if text not in get_args(kind):
            raise ValueError(f"{text!r} is not one of {', '.join(map(str, get_args(kind)))}")
        return text
    if get_origin(kind) is tuple:
        element = get_args(kind)[0]
        return tuple(element(v) for v in text.replace(",", " ").split())
    if kind is bool:
        if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"{text!r} is not a yes/no value")
        return text.lower() in ("1", "true", "yes")
    return kind(text)  # int, float, str


def parse_option(name: str, text: str) -> Any:
    """A --pairs cell -> the StylizeOptions field's type (lists: commas or spaces; bools: 1/0, true/false, yes/no;
    a field that takes a keyword or numbers, such as style_layer_weights, either; a mask: one path). ValueError naming
    the problem."""
    text = text.strip()
    if is_path_list(name):  # a job has one style image: one mask path (commas and spaces are the path's)
        return (text,)
    problems = []
    for kind in _kinds(_HINTS[name]):
        try:
            return _parse_as(kind, text)
        except ValueError as e:
            problems.append(str(e))
    raise ValueError(problems[0] if len(problems) == 1 else f"{text!r} is not valid here")


def _row_overrides(row: dict[str, str], where: str, csv_path: Path) -> Overrides:
    known = set(option_names())
    overrides = {}
    for column, cell in row.items():
        if column in ("content", "style") or cell is None or not cell.strip():
            continue
        name = field_named(column) or column.strip()
        if name not in known:
            raise JobError(
                f"{where}: unknown column {column!r}; columns are content, style and nst-run options "
                f"({', '.join(sorted(known))})"
            )
        try:
            overrides[name] = parse_option(name, cell)
        except ValueError as e:
            raise JobError(f"{where}: column {column} {e}") from None
        if is_path_list(name):  # a mask file, relative to the CSV like the images
            overrides[name] = tuple(p if p == NO_MASK else _relative(csv_path, p) for p in overrides[name])
    return tuple(sorted(overrides.items()))


def read_pairs(path: Path) -> list[Pair]:
    """Rows (content, style, overrides) of a pairs CSV with a header row naming `content`, `style` and optionally
    nst-run options (`iterations`, `style_weight` or `style-weight`, ...). Relative paths are relative to the CSV's
    folder; a cell may be a folder or a glob; an empty option cell means the batch's value."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = [(c or "").strip() for c in reader.fieldnames or []]
    except FileNotFoundError:
        raise JobError(f"--pairs {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise JobError(f"cannot read --pairs {path} ({e})") from None
    if not rows or "content" not in header or "style" not in header:
        raise JobError(f"--pairs {path} needs a header row with content and style columns and at least one row")
    out = []
    for number, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        where = f"--pairs {path} line {number}"
        if not (row.get("content") or "").strip() or not (row.get("style") or "").strip():
            raise JobError(f"{where}: content and style must both be given")
        overrides = _row_overrides(row, where, path)
        for content in expand_paths([_relative(path, row["content"])], f"{where}: content"):
            for style in expand_paths([_relative(path, row["style"])], f"{where}: style"):
                out.append((content, style, overrides))
    return out


def _relative(csv_path: Path, cell: str) -> str:
    cell = cell.strip()
    return cell if Path(cell).is_absolute() else str(csv_path.parent / cell)


def _digest(job: Job) -> str:
    return hashlib.sha1("\n".join(job.key()).encode()).hexdigest()[:8]


def name_jobs(pairs: Sequence[Pair], outdir: Path) -> list[Job]:
    """Drop duplicate pairs (first kept) and name the outputs; clashing names all get their digest appended."""
    jobs: list[Job] = []
    seen: set[tuple[str, str, str]] = set()
    for content, style, overrides in pairs:
        job = Job(content, style, outdir / f"{content.stem}__{style.stem}{OUTPUT_SUFFIX}", overrides)
        if job.key() not in seen:
            seen.add(job.key())
            jobs.append(job)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.name] = counts.get(job.name, 0) + 1
    return [
        dataclasses.replace(job, out=outdir / f"{job.out.stem}__{_digest(job)}{OUTPUT_SUFFIX}")
        if counts[job.name] > 1
        else job
        for job in jobs
    ]


def check_overrides(jobs: Sequence[Job], base: StylizeOptions) -> None:
    """Every job's options must be valid (a bad --pairs cell is a command-line error, found before any work), and its
    masks one per style image (a job has one) and existing files."""
    for job in jobs:
        try:
            options = job.options(base)
        except OptionError as e:
            raise JobError(f"--pairs row for {job.content} x {job.style}: {e.option} {e.problem}") from None
        for name in ("style_masks", "style_source_masks"):
            paths = getattr(options, name) or ()
            if len(paths) > 1:
                raise JobError(
                    f"{flag(name)} is given {len(paths)} times but a batch job has one style image; give one "
                    f"(the {name.replace('_', ' ')[:-1]} column of --pairs for per-row masks)"
                )
            missing = [p for p in paths if p != NO_MASK and not Path(p).is_file()]
            if missing:
                raise JobError(
                    f"{flag(name)} {missing[0]} (for {job.content} x {job.style}) is not a file; check the path"
                )


def build_jobs(
    contents: Sequence[str | Path],
    styles: Sequence[str | Path],
    outdir: str | Path,
    pairs_csv: str | Path | None = None,
    base: StylizeOptions | None = None,
) -> list[Job]:
    """Every content x style pair, then the --pairs rows; duplicates dropped; deterministic names under outdir."""
    outdir = Path(outdir)
    if contents and not styles:
        raise JobError("give at least one --style for the CONTENTS (or use --pairs FILE.csv)")
    if styles and not contents and pairs_csv is None:
        raise JobError("give CONTENTS (files, folders or globs) to stylize with --style")
    content_paths = expand_paths(contents, "content", exclude=outdir)
    style_paths = expand_paths(styles, "style", exclude=outdir)
    pairs: list[Pair] = [(c, s, ()) for c in content_paths for s in style_paths]
    if pairs_csv is not None:
        pairs += read_pairs(Path(pairs_csv))
    if not pairs:
        raise JobError("no jobs: give CONTENTS with --style, or --pairs FILE.csv")
    jobs = name_jobs(pairs, outdir)
    check_overrides(jobs, base or StylizeOptions())
    return jobs
