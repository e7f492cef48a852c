"""The student's repository: a reproducible one-commit baseline, and their work saved."""

from __future__ import annotations

import subprocess
from pathlib import Path

from debuglab.lab import gitrepo


def make_tree(root: Path) -> Path:
    (root / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("x = 1\n")
    (root / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0\1")
    (root / "pkg.egg-info").mkdir()
    (root / "pkg.egg-info" / "PKG-INFO").write_text("Name: pkg\n")
    return root


def test_the_baseline_is_one_commit_the_same_for_the_same_code(tmp_path):
    a = gitrepo.commit_baseline(make_tree(tmp_path / "a"))
    b = gitrepo.commit_baseline(make_tree(tmp_path / "b"))
    assert a == b
    log = subprocess.run(["git", "-C", tmp_path / "a", "log", "--format=%H %an"], capture_output=True, text=True).stdout
    assert log.split() == [a, "debuglab"]
    files = subprocess.run(["git", "-C", tmp_path / "a", "ls-files"], capture_output=True, text=True).stdout.split()
    assert files == ["pkg/mod.py"], "bytecode and build metadata are never part of the baseline"
    assert gitrepo.uncommitted(tmp_path / "a") == []


def test_rebaselining_replaces_the_history(tmp_path):
    tree = make_tree(tmp_path / "t")
    first = gitrepo.commit_baseline(tree)
    (tree / "pkg" / "mod.py").write_text("x = 2\n")
    second = gitrepo.commit_baseline(tree)
    assert second != first
    count = subprocess.run(["git", "-C", tree, "rev-list", "--count", "HEAD"], capture_output=True, text=True).stdout
    assert count.strip() == "1"


def test_work_is_saved_with_new_and_binary_files_and_the_index_untouched(tmp_path):
    tree = make_tree(tmp_path / "t")
    gitrepo.commit_baseline(tree)
    (tree / "pkg" / "mod.py").write_text("x = 3\n")
    (tree / "pkg" / "new.py").write_text("y = 1\n")
    (tree / "blob.bin").write_bytes(bytes(range(256)))
    [saved] = gitrepo.save_work(tree, tmp_path / "saved", "nova")  # no commits: the one patch
    text = saved.read_text()
    assert "+x = 3" in text and "pkg/new.py" in text and "GIT binary patch" in text
    status = subprocess.run(["git", "-C", tree, "status", "--porcelain"], capture_output=True, text=True).stdout
    assert "?? pkg/new.py" in status, "saving must not stage the student's files"
    assert gitrepo.save_work(tree, tmp_path / "saved", "nova") != [saved], "a second save never overwrites the first"


def test_nothing_to_save_gives_none(tmp_path):
    tree = make_tree(tmp_path / "t")
    gitrepo.commit_baseline(tree)
    assert gitrepo.save_work(tree, tmp_path / "saved", "nova") == []
    assert not (tmp_path / "saved").exists()
