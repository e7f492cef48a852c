"""The command line: student-safe catalog views, clear errors, exit codes scripts can trust."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from debuglab.catalog import Catalog
from debuglab.cli import main

DEBUGLAB = Path(sys.executable).with_name("debuglab")


def test_bugs_list_shows_every_bug(kit):
    result = CliRunner().invoke(main, ["bugs", "list"], terminal_width=200)
    assert result.exit_code == 0
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        assert bug.id in result.output and bug.title in result.output


def test_bugs_show_tells_the_story_and_nothing_that_gives_it_away(kit):
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        result = CliRunner().invoke(main, ["bugs", "show", bug.id], terminal_width=300)
        assert result.exit_code == 0
        assert bug.title in result.output and bug.objectives[0] in result.output
        for secret in (*bug.hints, *bug.scope, *bug.test_ids, bug.feedback.fixed):
            assert secret not in result.output, secret


def test_an_unknown_bug_is_one_clear_line_and_exit_2():
    result = subprocess.run([DEBUGLAB, "bugs", "show", "no-such-bug"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "error: unknown bug 'no-such-bug'" in result.stderr
    assert "Traceback" not in result.stderr


def test_inject_into_a_folder_that_is_no_checkout_says_so(tmp_path):
    result = subprocess.run([DEBUGLAB, "inject", "--checkout", tmp_path], capture_output=True, text=True)
    assert result.returncode == 2
    assert "no PKG-INFO" in result.stderr


def test_verify_without_a_lab_says_how_to_make_one(tmp_path):
    result = subprocess.run([DEBUGLAB, "bugs", "verify", "--lab", tmp_path / "nolab"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "no lab here" in result.stderr and "debuglab lab create" in result.stderr
