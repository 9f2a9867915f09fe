"""nst-batch's job list: files, folders, globs and --pairs CSV rows -> jobs with deterministic names, duplicates
dropped, clashing names disambiguated. No model, no images decoded: fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from nst.batch.jobs import Job, JobError, build_jobs, name_jobs, parse_option
from nst.batch.record import is_done, job_fields, stray_temporaries
from nst.engine.options import StylizeOptions


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not decoded here")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in (
        "photos/a.jpg",
        "photos/b.png",
        "photos/notes.txt",
        "photos/.hidden.png",
        "photos/sub/c.jpg",
        "more/a.png",
        "styles/starry.jpg",
        "styles/scream.png",
    ):
        touch(tmp_path / name)
    return tmp_path


def names(jobs: list[Job]) -> list[str]:
    return [job.name for job in jobs]


def test_files_and_styles_make_every_pair_in_order(tree: Path) -> None:
    jobs = build_jobs(
        [tree / "photos/a.jpg", tree / "photos/b.png"],
        [tree / "styles/starry.jpg", tree / "styles/scream.png"],
        tree / "out",
    )
    assert names(jobs) == ["a__starry.png", "a__scream.png", "b__starry.png", "b__scream.png"]
    assert all(job.out.parent == tree / "out" and not job.overrides for job in jobs)


def test_folder_takes_its_images_sorted_not_hidden_not_recursive(tree: Path) -> None:
    jobs = build_jobs([tree / "photos"], [tree / "styles/starry.jpg"], tree / "out")
    assert names(jobs) == ["a__starry.png", "b__starry.png"]


def test_glob_and_style_folder(tree: Path) -> None:
    jobs = build_jobs([str(tree / "photos/*.jpg"), str(tree / "photos/**/*.jpg")], [tree / "styles"], tree / "out")
    # photos/*.jpg -> a; photos/**/*.jpg -> a again (dropped) and sub/c; styles/ sorted: scream, starry
    assert names(jobs) == ["a__scream.png", "a__starry.png", "c__scream.png", "c__starry.png"]


def test_duplicates_are_dropped_first_kept(tree: Path) -> None:
    a = tree / "photos/a.jpg"
    jobs = build_jobs(
        [a, str(a), tree / "photos/../photos/a.jpg", tree / "photos"], [tree / "styles/starry.jpg"], tree / "out"
    )
    assert names(jobs) == ["a__starry.png", "b__starry.png"]


def test_clashing_names_all_get_a_stable_digest(tree: Path) -> None:
    style = tree / "styles/starry.jpg"
    jobs = build_jobs([tree / "photos/a.jpg", tree / "more/a.png", tree / "photos/b.png"], [style], tree / "out")
    clashing = [n for n in names(jobs) if n.startswith("a__starry__")]
    assert len(clashing) == 2 and len(set(clashing)) == 2
    assert "b__starry.png" in names(jobs)
    # the same jobs in another order, or beside other jobs, get the same names: the digest is of the job itself
    again = build_jobs([tree / "more/a.png", tree / "photos/a.jpg"], [style], tree / "out")
    assert sorted(names(again)) == sorted(clashing)
    assert {j.name: j.content for j in jobs if j.name in clashing} == {j.name: j.content for j in again}


def test_missing_inputs_are_command_line_errors(tree: Path) -> None:
    with pytest.raises(JobError, match="does not exist"):
        build_jobs([tree / "nope.jpg"], [tree / "styles/starry.jpg"], tree / "out")
    with pytest.raises(JobError, match="matches no file"):
        build_jobs([str(tree / "photos/*.gif")], [tree / "styles/starry.jpg"], tree / "out")
    (tree / "empty").mkdir()
    with pytest.raises(JobError, match="has no images"):
        build_jobs([tree / "empty"], [tree / "styles/starry.jpg"], tree / "out")
    with pytest.raises(JobError, match="--style"):
        build_jobs([tree / "photos"], [], tree / "out")
    with pytest.raises(JobError, match="no jobs"):
        build_jobs([], [], tree / "out")


def test_outputs_of_a_previous_batch_are_not_inputs(tree: Path) -> None:
    out = tree / "photos"  # -o the content folder itself: a rerun must not stylize the outputs
    touch(out / "a__starry.png")
    jobs = build_jobs([tree / "photos"], [tree / "styles/starry.jpg"], out)
    assert names(jobs) == ["a__starry.png", "b__starry.png"]


def test_pairs_csv_with_option_columns(tree: Path) -> None:
    csv = tree / "pairs.csv"
    csv.write_text(
        "content,style,iterations,style-weight,style_blend,low_memory\n"
        "photos/a.jpg,styles/starry.jpg,50,,,\n"
        "photos/a.jpg,styles/starry.jpg,80,1e-2,1,yes\n"
        f"{tree / 'photos/b.png'},styles/scream.png,,,,\n"
        "photos/a.jpg,styles/starry.jpg,50,,,\n"
    )  # a duplicate of line 2
    jobs = build_jobs([], [], tree / "out", pairs_csv=csv, base=StylizeOptions(iterations=10))
    assert len(jobs) == 3
    first, second, third = jobs
    assert first.name != second.name and first.name.startswith("a__starry__")  # same pair, other options
    assert dict(first.overrides) == {"iterations": 50}
    assert dict(second.overrides) == {"iterations": 80, "style_weight": 1e-2, "style_blend": (1.0,), "low_memory": True}
    assert third.name == "b__scream.png" and third.options(StylizeOptions(iterations=10)).iterations == 10
    assert second.options(StylizeOptions()).low_memory is True


def test_pairs_csv_combines_with_contents(tree: Path) -> None:
    csv = tree / "pairs.csv"
    csv.write_text("content,style\nphotos/b.png,styles/scream.png\n")
    jobs = build_jobs([tree / "photos/a.jpg"], [tree / "styles/starry.jpg"], tree / "out", pairs_csv=csv)
    assert names(jobs) == ["a__starry.png", "b__scream.png"]


@pytest.mark.parametrize(
    "text, match",
    [
        ("content\nphotos/a.jpg\n", "header row"),
        ("content,style,colour\nphotos/a.jpg,styles/starry.jpg,red\n", "unknown column 'colour'"),
        ("content,style,iterations\nphotos/a.jpg,styles/starry.jpg,many\n", "line 2: column iterations"),
        ("content,style,iterations\nphotos/a.jpg,styles/starry.jpg,0\n", "iterations must be >= 1"),
        ("content,style\nphotos/a.jpg,\n", "line 2: content and style must both be given"),
        ("content,style\nphotos/zzz.jpg,styles/starry.jpg\n", "line 2: content .*does not exist"),
    ],
)
def test_bad_pairs_csv(tree: Path, text: str, match: str) -> None:
    csv = tree / "pairs.csv"
    csv.write_text(text)
    with pytest.raises(JobError, match=match):
        build_jobs([], [], tree / "out", pairs_csv=csv)


def test_parse_option_types() -> None:
    assert parse_option("size", "256") == 256
    assert parse_option("style_weight", "1e-3") == 1e-3
    assert parse_option("style_layers", "relu1_1, relu2_1") == ("relu1_1", "relu2_1")
    assert parse_option("style_blend", "0.7 0.3") == (0.7, 0.3)
    assert parse_option("init", " noise ") == "noise"
    assert parse_option("low_memory", "Yes") is True
    assert parse_option("device", "cpu") == "cpu"
    assert parse_option("style_layer_weights", "equal") == "equal"
    assert parse_option("style_layer_weights", "1,2,3,4,5") == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert parse_option("scales", "1") == 1
    for name, text in (("low_memory", "maybe"), ("device", "tpu"), ("style_layer_weights", "most"), ("size", "big")):
        with pytest.raises(ValueError):
            parse_option(name, text)


def test_name_jobs_is_deterministic(tree: Path) -> None:
    pairs = [
        (tree / "photos/a.jpg", tree / "styles/starry.jpg", ()),
        (tree / "more/a.png", tree / "styles/starry.jpg", ()),
    ]
    assert names(name_jobs(pairs, tree / "out")) == names(name_jobs(pairs, tree / "out"))


def test_resume_rule(tree: Path) -> None:
    """Done = output present and the latest record says done with the same files, options and model."""
    (job,) = build_jobs([tree / "photos/a.jpg"], [tree / "styles/starry.jpg"], tree / "out")
    options = StylizeOptions(iterations=5)
    fields = job_fields(job, options, "model-1")
    latest = {job.name: {**fields, "status": "done"}}
    assert not is_done(job, fields, latest)  # no output yet
    touch(job.out)
    assert is_done(job, fields, latest)
    assert not is_done(job, job_fields(job, StylizeOptions(iterations=6), "model-1"), latest)
    assert not is_done(job, job_fields(job, options, "model-2"), latest)
    assert not is_done(job, fields, {job.name: {**fields, "status": "failed"}})
    (tree / "out" / f".{job.name}.k2j3h4.tmp").write_bytes(b"half")
    (tree / "out" / ".other.png.abc.tmp").write_bytes(b"not ours")
    assert [p.name for p in stray_temporaries(tree / "out", [job])] == [f".{job.name}.k2j3h4.tmp"]
