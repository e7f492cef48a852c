"""`debuglab test`: the visible tests of the student's checkout, by module, package, class,
id or path, with a table of the failures, --list and --pdb."""

from __future__ import annotations

import os
import subprocess

import pytest

from debuglab.catalog.model import Catalog
from tests._util import DEBUGLAB

pytestmark = pytest.mark.slow


def debuglab(*args, stdin: str | None = None):
    return subprocess.run([DEBUGLAB, *map(str, args)], capture_output=True, text=True, input=stdin, timeout=900,
                          env={**os.environ, "COLUMNS": "250"})


def visible_failure(kit) -> str:
    """A visible test that a tier 1 bug of the catalog breaks (the session lab plants them all)."""
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        if bug.difficulty == 1 and bug.project == "nova":
            visible = [i for i in bug.fail_to_pass if ".debuglab_hidden." not in i]
            if visible:
                return visible[0]
    pytest.skip("no tier 1 bug with a visible failing test")


def test_a_path_lists_the_tests_that_mirror_it(lab_under_test):
    listed = debuglab("test", "nova/scheduler/filters", "--dir", lab_under_test.root, "--list")
    assert listed.returncode == 0, listed.stderr
    ids = listed.stdout.splitlines()[:-1]
    assert len(ids) > 50 and all(i.startswith("nova.tests.unit.scheduler.filters.") for i in ids), ids[:3]
    assert listed.stdout.splitlines()[-1] == f"{len(ids)} test(s)"
    assert not [i for i in ids if "debuglab_hidden" in i]


def test_the_hidden_tests_and_a_target_that_names_nothing_are_refused(lab_under_test):
    hidden = debuglab("test", "nova.tests.unit.debuglab_hidden", "--dir", lab_under_test.root)
    assert hidden.returncode == 2 and "hidden tests are the grader's" in hidden.stderr
    nothing = debuglab("test", "nova.tests.unit.no_such_thing", "--dir", lab_under_test.root)
    assert nothing.returncode == 2 and "no_such_thing" in nothing.stderr and "Traceback" not in nothing.stderr


def test_a_planted_bugs_failure_is_a_row_of_the_table_and_pdb_stops_in_it(lab_under_test, kit):
    failing = visible_failure(kit)
    module = failing.rsplit(".", 2)[0]
    result = debuglab("test", failing, f"{module}.{failing.rsplit('.', 2)[1]}.no_such_test_either", "--dir",
                      lab_under_test.root)
    assert result.returncode == 2 and "no_such_test_either" in result.stderr  # one bad target: said, nothing run
    result = debuglab("test", failing, "--dir", lab_under_test.root)
    assert result.returncode == 1, result.stdout + result.stderr
    flat = "".join(ch for ch in result.stdout if ch not in "│┃ \n")  # the table folds long ids
    assert failing.replace(" ", "") in flat and "1failure(s)" in flat, result.stdout
    assert "Error" in result.stdout and "0 passed, 1 failed" in result.stdout  # the failure's own end, in the table
    stopped = debuglab("test", failing, "--dir", lab_under_test.root, "--pdb", stdin="where\nq\n")
    assert stopped.returncode == 1
    assert "post-mortem" in stopped.stdout and "(Pdb)" in stopped.stdout, stopped.stdout[-3000:]
