"""engine/files.py: atomic writes leave the old file or the new one, never a part; the JSON-lines log survives a torn
last line."""

from __future__ import annotations

import json

import pytest

from nst.engine.files import append_line, atomic_json, atomic_write, read_lines, sha256_file


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"new but")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    atomic_json({"a": [1, 2]}, tmp_path / "sub" / "log.json")
    assert json.loads((tmp_path / "sub" / "log.json").read_text()) == {"a": [1, 2]}
    assert oct((tmp_path / "sub" / "log.json").stat().st_mode & 0o777) == "0o644"


def test_append_after_a_torn_line_keeps_the_new_record(tmp_path):
    log = tmp_path / "batch.jsonl"
    append_line(log, {"job": 1})
    with open(log, "a") as f:
        f.write('{"job": 2, "sta')  # a crash in the middle of a write
    append_line(log, {"job": 3})
    assert read_lines(log) == [{"job": 1}, {"job": 3}]
    assert log.read_text().endswith('{"job":3}\n')
    assert read_lines(tmp_path / "missing.jsonl") == []


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
