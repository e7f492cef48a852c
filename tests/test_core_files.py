"""Writing a file whole or not at all (core/files.py)."""

from __future__ import annotations

import threading

import pytest

from debuglab.core.files import replacing, write_atomic


def test_a_write_replaces_the_file_whole_with_its_mode_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "lab.toml"
    target.write_text("old\n")
    write_atomic(target, "new\n", mode=0o600)
    assert target.read_text() == "new\n" and (target.stat().st_mode & 0o777) == 0o600
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes" and (target.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["lab.toml"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("kept\n")
    with pytest.raises(KeyboardInterrupt), replacing(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "kept\n" and [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_writers_of_one_file_never_share_a_temporary_name(tmp_path):
    """A fixed `.tmp` name let two writers rename each other's half-written file."""
    target = tmp_path / "registry.json"
    errors = []

    def write(n):
        try:
            for _ in range(50):
                write_atomic(target, f"{n}\n" * 1000)
        except OSError as exc:  # a writer whose temporary another one took
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    lines = target.read_text().splitlines()
    assert len(lines) == 1000 and len(set(lines)) == 1  # one writer's file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]
