"""The runner reads each id's status from a real subunit v2 stream written by a real
worker process; whatever does not report success has not passed."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from debuglab import testrun

MODULE = '''
import os
import time
import testtools

class T(testtools.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        self.assertEqual(1, 2)

    def test_error(self):
        raise RuntimeError("boom in the code under test")

    def test_skip(self):
        self.skipTest("not here")

    def test_env_is_scrubbed(self):
        assert "OS_PASSWORD" not in os.environ and "OS_CLOUD" not in os.environ
        assert os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] == "1"

class Exits(testtools.TestCase):
    def test_a_exit(self):
        os._exit(0)

    def test_b_after(self):
        pass

class Hangs(testtools.TestCase):
    def test_a_pass(self):
        pass

    def test_b_hang(self):
        time.sleep(600)
'''


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "tree" / "pkg").mkdir(parents=True)
    (tmp_path / "tree" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "tree" / "pkg" / "test_things.py").write_text(textwrap.dedent(MODULE))
    (tmp_path / "tree" / "pkg" / "test_broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "tree" / "pkg" / "test_small.py").write_text(
        "import testtools\n\nclass S(testtools.TestCase):\n"
        "    def test_one(self):\n        pass\n\n    def test_two(self):\n        self.fail('no')\n")
    return tmp_path / "tree"


def ids(*names):
    return [f"pkg.test_things.{n}" for n in names]


def run(tree, wanted, **kwargs):
    # debuglab's own venv has testtools and subunit, all the worker needs for these tests
    return testrun.run_tests(Path(sys.executable), tree, wanted, work_dir=tree.parent / "work", **kwargs)


def test_each_status_is_read_from_the_stream(tree, monkeypatch):
    monkeypatch.setenv("OS_PASSWORD", "instructor-secret")
    monkeypatch.setenv("OS_CLOUD", "devstack-admin")
    result = run(tree, ids("T.test_pass", "T.test_fail", "T.test_error", "T.test_skip", "T.test_env_is_scrubbed"))
    status = {i.rsplit(".", 1)[1]: o.status for i, o in result.outcomes.items()}
    assert status == {"test_pass": "success", "test_fail": "fail", "test_error": "fail",
                      "test_skip": "skip", "test_env_is_scrubbed": "success"}
    assert result.worker_ok
    assert "boom in the code under test" in result.outcomes["pkg.test_things.T.test_error"].details
    assert result.failing(list(result.outcomes)) == ids("T.test_fail", "T.test_error", "T.test_skip")


def test_unknown_ids_and_broken_modules_fail_with_the_reason(tree):
    result = run(tree, [*ids("T.test_nope"), "pkg.test_broken.X.test_y", "nothing.at.all"])
    assert {o.status for o in result.outcomes.values()} == {"fail"}
    assert "no such test in pkg.test_things" in result.outcomes["pkg.test_things.T.test_nope"].details
    assert "No module named 'no_such_module_here'" in result.outcomes["pkg.test_broken.X.test_y"].details


def test_os_exit_leaves_the_rest_unreported_and_nothing_passes(tree):
    result = run(tree, ids("T.test_pass", "Exits.test_a_exit", "Exits.test_b_after"))
    assert result.outcomes["pkg.test_things.Exits.test_a_exit"].status == "inprogress"
    assert result.outcomes["pkg.test_things.Exits.test_b_after"].status == "missing"
    assert not result.passed("pkg.test_things.Exits.test_a_exit")
    assert not result.passed("pkg.test_things.Exits.test_b_after")


def test_a_hang_is_killed_at_the_timeout_and_counts_as_not_passed(tree):
    result = run(tree, ids("Hangs.test_a_pass", "Hangs.test_b_hang"), timeout=5)
    assert result.returncode is None and not result.worker_ok
    assert result.outcomes["pkg.test_things.Hangs.test_a_pass"].status == "success"
    assert not result.passed("pkg.test_things.Hangs.test_a_pass"), "a killed worker vouches for nothing"
    assert result.outcomes["pkg.test_things.Hangs.test_b_hang"].status == "inprogress"


def test_a_module_name_runs_every_test_in_it(tree):
    result = run(tree, ["pkg.test_small"], timeout=60)
    assert {i: o.status for i, o in result.reported.items()} == {
        "pkg.test_small.S.test_one": "success", "pkg.test_small.S.test_two": "fail"}
    assert result.outcomes["pkg.test_small"].status == "missing"
