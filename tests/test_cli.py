"""The command line: student-safe catalog views, clear errors, exit codes scripts can trust."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from debuglab.catalog import Catalog

DEBUGLAB = Path(sys.executable).with_name("debuglab")


def debuglab(*args):
    """The real command, on a terminal wide enough that rich wraps no title."""
    return subprocess.run([DEBUGLAB, *args], capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})


def test_bugs_list_shows_every_bug(kit):
    result = debuglab("bugs", "list")
    assert result.returncode == 0
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        assert bug.id in result.stdout and bug.title in result.stdout


def test_bugs_show_tells_the_story_and_nothing_that_gives_it_away(kit):
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        result = debuglab("bugs", "show", bug.id)
        assert result.returncode == 0
        assert bug.title in result.stdout and bug.objectives[0] in result.stdout
        for secret in (*bug.hints, *bug.scope, *bug.test_ids, bug.feedback.fixed):
            assert secret not in result.stdout, secret


def test_an_unknown_bug_is_one_clear_line_and_exit_2():
    result = debuglab("bugs", "show", "no-such-bug")
    assert result.returncode == 2
    assert "error: unknown bug 'no-such-bug'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inject_into_a_folder_that_is_no_checkout_says_so(tmp_path):
    result = debuglab("inject", "--checkout", str(tmp_path))
    assert result.returncode == 2
    assert "no PKG-INFO" in result.stderr


def test_verify_without_a_lab_says_how_to_make_one(tmp_path):
    result = debuglab("bugs", "verify", "--lab", str(tmp_path / "nolab"))
    assert result.returncode == 2
    assert "no lab here" in result.stderr and "debuglab lab create" in result.stderr
