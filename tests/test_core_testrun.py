"""The runner reads each id's status from a real subunit v2 stream written by a real
worker process; whatever does not report success has not passed."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from debuglab.core import forkserver, testrun

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


# --- the fork server: one process imports once, a child per job ----------------------

SHARED = "import os\nopen(os.environ['DEBUGLAB_IMPORTS'], 'a').write('shared\\n')\nVALUE = 'shared'\n"
SCOPED = "VALUE = {value!r}\n"
USES = '''
import time
import testtools
from pkg import shared, scoped

class U(testtools.TestCase):
    def test_fixed(self):
        self.assertEqual(scoped.VALUE, "fixed")

    def test_shared(self):
        self.assertEqual(shared.VALUE, "shared")

    def test_hang(self):
        time.sleep(600)
'''
USES_IDS = [f"pkg.test_uses.U.{n}" for n in ("test_fixed", "test_shared")]


def make_tree(root: Path, scoped: str, extra: str = "") -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "shared.py").write_text(SHARED)
    (root / "pkg" / "scoped.py").write_text(SCOPED.format(value=scoped) + extra)
    (root / "pkg" / "test_uses.py").write_text(USES)
    return root


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A server on a baseline whose pkg.scoped is blocked, and two grading copies."""
    imports = tmp_path / "imports.log"
    imports.write_text("")
    imports.chmod(0o666)
    base = make_tree(tmp_path / "base", "buggy")
    trees = {name: make_tree(tmp_path / name, value) for name, value in (("a", "fixed"), ("b", "buggy"))}
    server = forkserver.Server(Path(sys.executable), base, {"modules": ["pkg.test_uses"], "blocked": ["pkg.scoped"]},
                            tmp_path / "server", env={"DEBUGLAB_IMPORTS": str(imports)})
    yield server, trees, imports, tmp_path
    server.close()


def test_the_server_imports_once_and_each_job_sees_only_its_own_tree(served):
    server, trees, imports, tmp = served
    assert server.hello["preloaded"] == 0  # pkg.test_uses imports the blocked module: dropped
    assert imports.read_text() == "shared\n"  # ... but what it imported first stayed loaded
    jobs = {name: server.submit(forkserver.Job(tree, USES_IDS, tmp / f"job-{name}", 60)) for name, tree in trees.items()}
    runs = {name: job.result(timeout=120) for name, job in jobs.items()}
    assert runs["a"].passed("pkg.test_uses.U.test_fixed") and runs["a"].passed("pkg.test_uses.U.test_shared")
    assert not runs["b"].passed("pkg.test_uses.U.test_fixed"), "a's fix reached b"
    assert runs["b"].passed("pkg.test_uses.U.test_shared")
    assert imports.read_text() == "shared\n", "a child imported the shared module again"
    for name, run in runs.items():
        audit = testrun.audit_stream(run.stream, run.nonce)
        assert audit.finished and not audit.forged and not audit.integrity, (name, audit)


def test_a_hanging_job_ends_at_its_own_deadline_and_does_not_hold_up_another(served):
    server, trees, _, tmp = served
    hang = server.submit(forkserver.Job(trees["a"], ["pkg.test_uses.U.test_hang"], tmp / "hang", 8))
    quick = server.submit(forkserver.Job(trees["b"], USES_IDS, tmp / "quick", 60))
    done = quick.result(timeout=60)
    assert not hang.done(), "the quick job waited for the hanging one"
    assert done.worker_ok and done.passed("pkg.test_uses.U.test_shared")
    hung = hang.result(timeout=60)
    assert hung.returncode is None and 8 <= hung.seconds < 20
    assert hung.outcomes["pkg.test_uses.U.test_hang"].status == "inprogress"


def test_the_audit_flags_results_forged_on_the_stream(served):
    """A student's module that writes successes into the result file while it is
    imported: the ids then also report their real result, out of sequence."""
    server, _, _, tmp = served
    forge = textwrap.dedent('''
        import os, subunit
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.endswith(".subunit"):
                out = os.fdopen(int(fd), "wb", closefd=False)
                writer = subunit.StreamResultToBytes(out)
                writer.status(test_id="pkg.test_uses.U.test_fixed", test_status="inprogress")
                writer.status(test_id="pkg.test_uses.U.test_fixed", test_status="success")
                out.flush()
    ''')
    tree = make_tree(tmp / "forger", "buggy", forge)
    run = server.submit(forkserver.Job(tree, USES_IDS, tmp / "forge", 60)).result(timeout=120)
    audit = testrun.audit_stream(run.stream, run.nonce)
    assert any("while the tests were being imported" in f for f in audit.forged), audit
    honest = server.submit(forkserver.Job(make_tree(tmp / "honest", "buggy"), USES_IDS, tmp / "h", 60)).result(timeout=120)
    assert not testrun.audit_stream(honest.stream, honest.nonce).forged
    assert testrun.audit_stream(honest.stream, "another nonce").forged  # a replayed stream is not this run's


@pytest.mark.parametrize("attack, found", [
    ("import testtools\n_real = testtools.TestCase.run\n"
     "def run(self, result=None):\n"
     "    if self._testMethodName == 'test_fixed':\n"
     "        result.startTest(self); result.addSuccess(self); result.stopTest(self); return result\n"
     "    return _real(self, result)\n"
     "testtools.TestCase.run = run\n", "TestCase.run was replaced"),
    ("import sys\n"
     "def _skip(self):\n    pass\n"
     "import threading\n"
     "def _patch():\n"
     "    import time\n"
     "    while 'pkg.test_uses' not in sys.modules or not hasattr(sys.modules['pkg.test_uses'], 'U'):\n"
     "        time.sleep(0.001)\n"
     "    sys.modules['pkg.test_uses'].U.test_fixed = _skip\n"
     "threading.Thread(target=_patch, daemon=True).start()\n", "U.test_fixed is not the code of"),
])
def test_the_worker_finds_a_test_made_to_pass_without_running(served, attack, found):
    """Targeted faking from the student's module: the runner patched for one test name,
    or the test's method replaced by the student's code."""
    server, _, _, tmp = served
    tree = make_tree(tmp / "faker", "buggy", attack)
    run = server.submit(forkserver.Job(tree, USES_IDS, tmp / "fake", 60, student_files=["pkg/scoped.py"])).result(
        timeout=120)
    assert run.passed("pkg.test_uses.U.test_fixed"), "the fake did not even work: the test proves nothing"
    audit = testrun.audit_stream(run.stream, run.nonce)
    assert audit.finished and any(found in p for p in audit.integrity), audit
