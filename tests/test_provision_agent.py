"""The host-side agent's re-baseline, run here directly on DevStack-shaped trees (the
SSH round trip is tested in test_provision.py): the student's repository borrows
DevStack's index so that `git add` hashes only the files the bugs changed, and the
baseline it commits is exactly the tree that hashing every file gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from debuglab.core.kit import cache_dir
from debuglab.lab import upstream
from debuglab.provision import agent

sys.path.insert(0, str(Path(__file__).parent))
import sshhosts  # noqa: E402


def git(checkout: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "-C", checkout, *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


@pytest.fixture(scope="module")
def template(tmp_path_factory, projects):
    nova = projects["nova"]
    return sshhosts.devstack_template(tmp_path_factory.mktemp("devstack"), upstream.fetch(nova, cache_dir()), nova)


def rebaseline(home: Path, kit) -> tuple[Path, dict]:
    ids = [b.id for b in Catalog.load(kit.root / "bugs").bugs.values() if b.project == "nova"]
    out = agent.op_baseline({"stack_dir": str(home / "opt" / "stack"), "kit_dir": str(kit.root),
                             "projects": {"nova": ids}})
    return home / "opt" / "stack" / "nova", out["projects"]["nova"]


def tree_of_every_file(checkout: Path, tmp: Path) -> str:
    """The tree `git add --all` gives with an empty index: every file hashed."""
    env = {"GIT_INDEX_FILE": str(tmp / "fresh-index")}
    git(checkout, "add", "--all", env=env)
    return git(checkout, "write-tree", env=env)


def test_baseline_borrows_devstacks_index_and_commits_the_true_tree(template, tmp_path, kit):
    sshhosts.install_devstack(template, tmp_path)
    checkout, result = rebaseline(tmp_path, kit)
    assert result["changed"]
    original = checkout.parent / ".debuglab" / "original" / "nova.git"
    # the borrowed index let `git add` trust DevStack's hashes of the unchanged files
    # (the speed is bench_provision's to show): the tree must be the one hashing gives
    assert git(checkout, "rev-parse", "HEAD^{tree}") == tree_of_every_file(checkout, tmp_path)
    assert git(checkout, "status", "--porcelain") == ""
    planted = git(checkout, "diff", "--stat", git(checkout, "--git-dir", str(original), "rev-parse", "HEAD"))
    assert planted  # the bugs are in the baseline, DevStack's commit is not


def test_an_index_that_names_a_missing_object_falls_back_to_hashing_every_file(template, tmp_path, kit):
    sshhosts.install_devstack(template, tmp_path)
    nova = tmp_path / "opt" / "stack" / "nova"
    blob = git(nova, "rev-parse", ":README.rst")
    (nova / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a repository with a hole in it
    checkout, result = rebaseline(tmp_path, kit)
    assert result["changed"]
    assert git(checkout, "rev-parse", "HEAD^{tree}") == tree_of_every_file(checkout, tmp_path)
    assert git(checkout, "cat-file", "-t", f"HEAD:README.rst") == "blob"  # written by the fresh add
    original = checkout.parent / ".debuglab" / "original" / "nova.git"
    assert not (original / "objects" / blob[:2] / blob[2:]).exists()  # DevStack's repository untouched
