"""The grader end to end on the session lab: real submissions (git checkouts and .patch
files), real grading copies, nova's real tests in the sandboxed worker."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from debuglab.grade import grader, submission
from debuglab.grade.sandbox import Limits
from debuglab.grade.verdict import ERROR, FIXED, NOT_FIXED, REJECTED, Grade
from tests._util import ROOT

pytestmark = pytest.mark.slow

BUG = "num-instances-off-by-one"
SCOPE = "nova/scheduler/filters/num_instances_filter.py"
BUGS = ("flavor-disk-ephemeral", "image-min-disk-units", "num-instances-off-by-one")
CLI = ("from debuglab.cli import main; from debuglab.grade.commands import check, grade; "
       "main.add_command(check); main.add_command(grade); main()")


@pytest.fixture(scope="module")
def graded_lab(lab_under_test):
    """The lab the grader runs with, reachable by the sandbox's own uids as in
    production: pytest's temp folders are 0700, which would leave the session's lab
    unreadable to them and the grader on its weaker sandbox (no own uid, real copies).
    Folders above the lab get o+x (pass through, not list)."""
    for parent in [lab_under_test.root, *lab_under_test.root.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    return lab_under_test


def solution(bug_id: str, kind: str) -> Path:
    return ROOT / "instructor" / "solutions" / bug_id / f"{kind}.patch"


def student(graded_lab, tmp: Path, name: str, *patches: Path) -> Path:
    """A student's checkout: a clone of the lab's baseline with `patches` applied."""
    dest = tmp / name
    subprocess.run(["git", "clone", "-q", str(graded_lab.checkout("nova")), str(dest)], check=True)
    for patch in patches:
        subprocess.run(["git", "-C", str(dest), "apply", str(patch)], check=True)
    return dest


@pytest.fixture(scope="module")
def class_grades(graded_lab, tmp_path_factory):
    """One class graded in one pool: reference, alternative and wrong fixes of every bug,
    an empty change, and a student who only rigged tests and runner files."""
    tmp = tmp_path_factory.mktemp("class")
    subs = tmp / "subs"
    subs.mkdir()
    for kind in ("fix", "alternative", "wrong"):
        (subs / f"{kind}.patch").write_text("".join(solution(b, kind).read_text() for b in BUGS))
    (subs / "empty.patch").write_text("")
    # a diff whose context is not the lab's: it does not apply
    (subs / "stale.patch").write_text(_stale(solution(BUG, "fix").read_text()))
    # deleting the file in scope is a change in scope: graded, and not fixed
    deleter = student(graded_lab, subs, "deleter")  # checkouts inside the folder: a link is refused
    (deleter / SCOPE).unlink()
    rig = student(graded_lab, subs, "rigger")
    test_file = rig / "nova/tests/unit/scheduler/filters/test_num_instances_filters.py"
    test_file.write_text(test_file.read_text().replace("self.assertFalse(", "self.assertTrue(True or "))
    base = rig / "nova/test.py"
    base.write_text(base.read_text() + "\nTestCase.run = lambda self, result=None: None\n")
    for name in ("conftest.py", "sitecustomize.py", "nova/tests/conftest.py"):
        (rig / name).write_text("import os\nos._exit(0)\n")
    (rig / "evil.pth").write_text("import os; os._exit(0)\n")
    start = time.monotonic()
    grades = grader.grade_many(submission.gather(subs), list(BUGS), graded_lab.python)
    return {g.student: g for g in grades}, time.monotonic() - start


@pytest.mark.parametrize("kind", ["fix", "alternative"])
def test_reference_and_alternative_fixes_are_fixed(class_grades, kind):
    grade = class_grades[0][kind]
    assert [v.verdict for v in grade.verdicts] == [FIXED] * 3, [v.reason for v in grade.verdicts]
    assert grade.score == grade.max_score == 3
    assert all(v.ran and v.fail_to_pass[0] == v.fail_to_pass[1] > 0 for v in grade.verdicts)
    assert "scrubbed-env" in grade.sandbox and "python-S" in grade.sandbox
    if os.geteuid() == 0:  # the production sandbox: each job a uid of its own
        assert "own-uid" in grade.sandbox, grade.sandbox


def test_wrong_fixes_are_not_fixed(class_grades):
    grade = class_grades[0]["wrong"]
    assert [v.verdict for v in grade.verdicts] == [NOT_FIXED] * 3, [v.reason for v in grade.verdicts]
    assert all(v.ran for v in grade.verdicts) and grade.score == 0


def test_no_change_is_not_fixed_without_running_anything(class_grades):
    grade = class_grades[0]["empty"]
    assert all(v.verdict == NOT_FIXED and not v.ran and v.seconds == 0 for v in grade.verdicts)


def test_a_diff_that_does_not_apply_is_rejected(class_grades):
    v = class_grades[0]["stale"].verdict(BUG)
    assert v.verdict == REJECTED and "does not apply" in v.reason and not v.ran


def test_deleting_the_scoped_file_is_graded_not_fixed(class_grades):
    v = class_grades[0]["deleter"].verdict(BUG)
    assert v.verdict == NOT_FIXED and v.ran and v.files == (SCOPE,)
    assert "could not import your change" in v.feedback


def test_a_same_size_change_never_runs_the_baselines_bytecode(graded_lab, tmp_path):
    """The baseline is compiled moments before a copy is patched: a change of the same
    size in the same second would pass the .pyc check, so the copy drops that bytecode."""
    from debuglab.catalog.model import Catalog
    from debuglab.grade.copy import Trees

    bugs = [b for b in Catalog.load(ROOT / "bugs").bugs.values() if b.project == "nova"]
    fix = solution("image-min-disk-units", "fix").read_text()
    with Trees(graded_lab.python, bugs, scratch=tmp_path) as trees:
        base = trees.baseline("nova", tuple(b.id for b in bugs))
        copy = trees.copy("nova", tuple(b.id for b in bugs), fix, "same-size")
        assert (copy / "nova/compute/api.py").stat().st_size == (base / "nova/compute/api.py").stat().st_size
        assert list((base / "nova/compute/__pycache__").glob("api.*.pyc"))
        assert not list((copy / "nova/compute/__pycache__").glob("api.*.pyc"))
        assert "units.Gi" in (copy / "nova/compute/api.py").read_text()
        assert "units.Mi\n" in (base / "nova/compute/api.py").read_text()


def test_rigged_tests_and_runner_files_change_nothing(class_grades):
    grade = class_grades[0]["rigger"]
    assert all(v.verdict == NOT_FIXED and not v.ran for v in grade.verdicts)
    listed = {n.path for n in grade.not_applied}
    assert {"conftest.py", "sitecustomize.py", "evil.pth", "nova/tests/conftest.py", "nova/test.py",
            "nova/tests/unit/scheduler/filters/test_num_instances_filters.py"} <= listed


def _stale(patch: str) -> str:
    """The patch with its first context line changed: a diff made against other code."""
    lines = patch.splitlines(keepends=True)
    n = next(k for k, line in enumerate(lines) if line.startswith(" ") and line.strip())
    lines[n] = " # a line the lab's baseline does not have\n"
    return "".join(lines)


def _hostile(graded_lab, tmp: Path, name: str, code: str, fix: bool = True) -> Path:
    dest = student(graded_lab, tmp, name, *([solution(BUG, "fix")] if fix else []))
    target = dest / SCOPE
    target.write_text(code + "\n" + target.read_text())
    return dest


# the bug's fail_to_pass tests, as the catalog lists them: the targets of the fakes below
FAIL_TO_PASS = Catalog.load(ROOT / "bugs", [BUG]).bugs[BUG].fail_to_pass
FAIL_TO_PASS_NAMES = tuple(sorted({i.rsplit(".", 1)[1] for i in FAIL_TO_PASS}))
FAIL_TO_PASS_CLASSES = {i.rsplit(".", 2)[0]: i.rsplit(".", 2)[1] for i in FAIL_TO_PASS}
# Targeted faking, with the bug left in place: only the bug's fail_to_pass tests are made
# to report success, by name, without running.
FAKES = {
    "fakes_run": ("import testtools as _tt\n"
                  f"_NAMES = {FAIL_TO_PASS_NAMES!r}\n"
                  "_real_run = _tt.TestCase.run\n"
                  "def _run(self, result=None):\n"
                  "    if self._testMethodName in _NAMES:\n"
                  "        result.startTest(self); result.addSuccess(self); result.stopTest(self)\n"
                  "        return result\n"
                  "    return _real_run(self, result)\n"
                  "_tt.TestCase.run = _run"),
    "fakes_method": ("import sys as _sys, threading as _th, time as _time\n"
                     "def _noop(self):\n    pass\n"
                     f"_TARGETS = {FAIL_TO_PASS_CLASSES!r}\n"
                     "def _patch():\n"
                     "    left, end = dict(_TARGETS), _time.time() + 60\n"
                     "    while left and _time.time() < end:\n"
                     "        for mod, cls in list(left.items()):\n"
                     "            klass = getattr(_sys.modules.get(mod), cls, None)\n"
                     "            if klass is not None:\n"
                     f"                for name in {FAIL_TO_PASS_NAMES!r}:\n"
                     "                    if name in vars(klass):\n"
                     "                        setattr(klass, name, _noop)\n"
                     "                del left[mod]\n"
                     "        _time.sleep(0.0005)\n"
                     "_th.Thread(target=_patch, daemon=True).start()"),
    "forges_stream": ("import os as _os, subunit as _su\n"
                      "for _fd in _os.listdir('/proc/self/fd'):\n"
                      "    try:\n"
                      "        _target = _os.readlink(f'/proc/self/fd/{_fd}')\n"
                      "    except OSError:\n"
                      "        continue\n"
                      "    if _target.endswith('.subunit'):\n"
                      "        _out = _os.fdopen(int(_fd), 'wb', closefd=False)\n"
                      "        _w = _su.StreamResultToBytes(_out)\n"
                      f"        for _id in {FAIL_TO_PASS!r}:\n"
                      "            _w.status(test_id=_id, test_status='inprogress')\n"
                      "            _w.status(test_id=_id, test_status='success')\n"
                      "        _out.flush()"),
}
FLAVOR = "flavor-disk-ephemeral"
FLAVOR_VIEW = "nova/api/openstack/compute/views/flavors.py"
# Code in another bug's scope (nova/compute/api.py) that fixes the flavor bug from there,
# once the flavor view module is loaded: in a tree with both, the flavor bug's tests pass.
CROSS = '''

import importlib.abc as _abc, importlib.util as _iu, sys as _sys


class _CrossFix(_abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "nova.api.openstack.compute.views.flavors":
            return None
        _sys.meta_path.remove(self)
        spec = _iu.find_spec(name)
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            show = module.ViewBuilder.show

            def fixed(self, request, flavor, include_extra_specs=False):
                body = show(self, request, flavor, include_extra_specs)
                body["flavor"]["disk"] = flavor["root_gb"]
                return body
            module.ViewBuilder.show = fixed
        spec.loader.exec_module = exec_module
        return spec


if "nova.api.openstack.compute.views.flavors" not in _sys.modules:
    _sys.meta_path.insert(0, _CrossFix())
'''


HOSTILE = {
    "exits": "import os\nos._exit(0)",
    "loops": "while True:\n    pass",
    "forks": "import os\nfor _ in range(100000):\n    try:\n        os.fork()\n    except OSError:\n        break",
    "patches_unittest": ("import unittest, testtools\n"
                         "def _run(self, result=None):\n"
                         "    result.startTest(self); result.addSuccess(self); result.stopTest(self)\n"
                         "unittest.TestCase.run = _run\ntesttools.TestCase.run = _run"),
    "chatty": "import sys\nsys.stdout.write('x' * (8 << 20))\nsys.stderr.write('y' * (8 << 20))",
}


@dataclass(frozen=True)
class HostileGrades:
    """The hostile class graded once for the module: each student's verdict of BUG, the
    time the whole class took, the limit it ran under, every grade, and the checkout that
    fixes the flavor bug from another bug's file."""

    verdicts: dict
    seconds: float
    timeout: float
    grades: dict
    cross_checkout: Path


@pytest.fixture(scope="module")
def hostile_grades(graded_lab, tmp_path_factory):
    from debuglab.grade.sandbox import Sandbox

    features = Sandbox().features(graded_lab.python)
    if "own-uid" not in features and "pids-cgroup" not in features:
        pytest.skip("no process-count limit here (neither an own uid nor a pids cgroup): no fork loop")
    tmp = tmp_path_factory.mktemp("hostile")
    subs = [submission.from_checkout(_hostile(graded_lab, tmp, name, code), name) for name, code in HOSTILE.items()]
    subs += [submission.from_checkout(_hostile(graded_lab, tmp, name, code, fix=False), name) for name, code in FAKES.items()]
    # a hang in one bug's tests, a right fix of another
    hangs = _hostile(graded_lab, tmp, "hangs_one_fixes_other", HOSTILE["loops"])
    subprocess.run(["git", "-C", str(hangs), "apply", str(solution(FLAVOR, "fix"))], check=True)
    # another bug's file fixing the flavor bug; the flavor view itself only tidied
    cross = student(graded_lab, tmp, "cross")
    (cross / "nova/compute/api.py").write_text((cross / "nova/compute/api.py").read_text() + CROSS)
    (cross / FLAVOR_VIEW).write_text((cross / FLAVOR_VIEW).read_text() + "\n# tidied\n")
    subs += [submission.from_checkout(path, path.name) for path in (hangs, cross)]
    timeout = 60
    start = time.monotonic()
    # 128 processes a job (512 by default): the fork loop's clones each go on importing
    # the tests, and CI's two cores need not run 512 of them
    grades = grader.grade_many(subs, [BUG, FLAVOR, "image-min-disk-units"], graded_lab.python,
                               options=grader.Options(Limits(timeout=timeout, processes=128)))
    by_student = {g.student: g for g in grades}
    return HostileGrades({name: g.verdict(BUG) for name, g in by_student.items()}, time.monotonic() - start,
                         timeout, by_student, cross)


def test_a_hang_is_ended_at_the_bugs_own_deadline_not_the_default(graded_lab, tmp_path, kit_copy):
    """A submission that loops at import held a worker for the default 600 s.
    The deadline is 10 x the reference fix's run (recorded by bugs verify) + 30 s."""
    (kit_copy.bugs_dir / BUG / "verified.toml").write_text("reference_fix_seconds = 1.0\n")
    loops = submission.from_checkout(_hostile(graded_lab, tmp_path, "loops", HOSTILE["loops"], fix=False), "loops")
    grade = grader.grade(loops, [BUG], graded_lab.python, kit=kit_copy)  # the default limit: 600 s
    v = grade.verdict(BUG)
    assert v.verdict == ERROR and "timed out after 40 s" in v.reason, v.reason
    assert v.seconds < 600


def test_os_exit_at_import_is_an_error(hostile_grades):
    v = hostile_grades.verdicts["exits"]
    assert v.verdict == ERROR and "never reported" in v.reason


def test_endless_loop_at_import_times_out_as_an_error(hostile_grades):
    verdicts, seconds, timeout = hostile_grades.verdicts, hostile_grades.seconds, hostile_grades.timeout
    assert verdicts["loops"].verdict == ERROR and "timed out" in verdicts["loops"].reason
    assert verdicts["loops"].seconds < timeout + 15


def test_fork_loop_gets_a_verdict_and_leaves_nothing_behind(hostile_grades):
    # the clones of a fork loop each go on running tests into the same result file: the
    # audit then finds results out of sequence (rejected), or the job ends early (error)
    assert hostile_grades.verdicts["forks"].verdict in (ERROR, NOT_FIXED, REJECTED)
    from debuglab.grade.sandbox import UID_BASE, _cgroup_of, _pids_of, _registry

    with _registry() as data:  # every claim of this session was released ...
        assert not [k for k, entry in data["claims"].items() if entry["pid"] == os.getpid()]
        held = {UID_BASE + int(k) for k in data["claims"]}  # (another grader's, on this machine)
    # ... and no job's process, nor a cgroup, is left behind
    assert not [(uid, _pids_of(uid)) for uid in range(UID_BASE, UID_BASE + 50) if uid not in held and _pids_of(uid)]
    assert not [slot for slot in range(50) if UID_BASE + slot not in held and _cgroup_of(slot).exists()]


def test_patching_unittest_at_import_is_rejected(hostile_grades):
    v = hostile_grades.verdicts["patches_unittest"]
    assert v.verdict == REJECTED and "tamper" in v.reason, v.reason


def test_megabytes_of_output_are_graded_normally(hostile_grades):
    assert hostile_grades.verdicts["chatty"].verdict == FIXED


@pytest.mark.parametrize("name, reason", [("fakes_run", "tests that did not run as written"),
                                          ("fakes_method", "tests that did not run as written"),
                                          ("forges_stream", "results the test worker did not write")])
def test_targeted_result_faking_is_rejected(hostile_grades, name, reason):
    """The bug is left in place; the student's module makes exactly its fail_to_pass
    tests report success without running them (the runner patched for those names, the
    test methods replaced, or successes written into the result file at import)."""
    v = hostile_grades.verdicts[name]
    assert v.verdict == REJECTED and reason in v.reason, v.reason
    if name != "forges_stream":  # the fake worked on the stream: only the audit stands between
        assert v.fail_to_pass[0] == v.fail_to_pass[1] == len(FAIL_TO_PASS), v.fail_to_pass
    assert "faked" in v.feedback and "nova.tests" not in v.feedback


def test_a_hang_in_one_bug_gives_it_an_error_and_the_other_bug_is_still_graded(hostile_grades):
    grade = hostile_grades.grades["hangs_one_fixes_other"]
    assert grade.verdict(BUG).verdict == ERROR and "timed out" in grade.verdict(BUG).reason
    assert grade.verdict(FLAVOR).verdict == FIXED, grade.verdict(FLAVOR).reason


def test_one_bugs_file_never_fixes_another_bug(hostile_grades, graded_lab, tmp_path):
    """The cross student's compute/api.py fixes the flavor bug in any tree that holds it
    (shown first, with the runner on their whole checkout); graded, the flavor bug's copy
    holds only the flavor view's own (harmless) change, so it stays not fixed."""
    from debuglab.catalog.model import Catalog
    from debuglab.core import testrun

    flavor = Catalog.load(ROOT / "bugs").bugs[FLAVOR]
    upstream_ids = [i for i in flavor.fail_to_pass if "debuglab_hidden" not in i][:6]
    whole = testrun.run_tests(graded_lab.python, hostile_grades.cross_checkout, upstream_ids, work_dir=tmp_path)
    assert whole.worker_ok and not whole.failing(upstream_ids), "the cross fix does not work: the test proves nothing"
    graded = hostile_grades.grades["cross"].verdict(FLAVOR)
    assert graded.verdict == NOT_FIXED and graded.ran, graded.reason


def test_cli_grade_checkout_json_with_symlink_and_out_of_scope(graded_lab, tmp_path):
    dest = student(graded_lab, tmp_path, "sym", solution(BUG, "fix"))
    (dest / "nova/utils.py").write_text((dest / "nova/utils.py").read_text() + "\n# tidy\n")
    flavors = dest / "nova/api/openstack/compute/views/flavors.py"
    flavors.unlink()
    flavors.symlink_to("/etc/passwd")
    out = subprocess.run(
        [sys.executable, "-c", CLI, "grade", "--checkout", str(dest), "--lab", str(graded_lab.root), "--format", "json",
         "--bugs", f"{BUG},flavor-disk-ephemeral"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["schema"] == "debuglab.grade/1"
    bugs = {b["id"]: b for b in data["grades"][0]["bugs"]}
    assert bugs[BUG]["verdict"] == FIXED
    assert bugs["flavor-disk-ephemeral"]["verdict"] == REJECTED and "symlink" in bugs["flavor-disk-ephemeral"]["reason"]
    assert {"path": "nova/utils.py", "reason": "outside the scope of the bugs graded"} in data["grades"][0]["not_applied"]


def test_cli_grade_not_a_repo_is_bad_input(graded_lab, tmp_path):
    out = subprocess.run([sys.executable, "-c", CLI, "grade", "--checkout", str(tmp_path), "--lab", str(graded_lab.root)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "not a git repository" in out.stderr


def test_check_gives_feedback_and_the_next_hint_never_test_ids(graded_lab, tmp_path):
    from debuglab.catalog.model import Catalog

    catalog = Catalog.load(ROOT / "bugs")
    mine = tmp_path / "mylab"
    (mine / "stack").mkdir(parents=True)
    shutil.copy(graded_lab.root / "lab.toml", mine / "lab.toml")
    subprocess.run(["git", "clone", "-q", str(graded_lab.checkout("nova")), str(mine / "stack/nova")], check=True)
    subprocess.run(["git", "-C", str(mine / "stack/nova"), "apply", str(solution(BUG, "alternative"))], check=True)
    (mine / "venv").symlink_to(graded_lab.venv)
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", CLI, "check", BUG, "flavor-disk-ephemeral", "--dir", str(mine)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        runs.append(out.stdout)
    flavor = catalog.bugs["flavor-disk-ephemeral"]
    assert "✓ fixed" in runs[0] and catalog.bugs[BUG].feedback.fixed in runs[0]
    assert "✗ not-fixed" in runs[0] and flavor.feedback.not_fixed in runs[0]
    assert "hint 1/" in runs[0] and flavor.hints[0] in runs[0] and flavor.hints[1] not in runs[0]
    assert "hint 2/" in runs[1] and flavor.hints[1] in runs[1]
    assert "1 of 2 bug(s) fixed" in runs[1]
    for text in runs:
        assert "nova.tests" not in text and "debuglab_hidden" not in text and "test_" not in text
    assert json.loads((mine / ".debuglab/hints.json").read_text())["seen"] == {"flavor-disk-ephemeral": 2}


# both projects' bugs, graded from a lab, a patch and a class folder
EVERY_PROJECT = ("nova-limits-empty-table", "anti-affinity-group-ignored", BUG, "scheduler-stale-aggregate-host")


def student_lab(graded_lab, dest: Path, bug_ids) -> Path:
    """A student's lab: the lab's lab.toml and venv, a clone of each checkout, every bug's
    reference fix applied to its own project's checkout."""
    catalog = Catalog.load(ROOT / "bugs")
    (dest / "stack").mkdir(parents=True)
    shutil.copy(graded_lab.root / "lab.toml", dest / "lab.toml")
    (dest / "venv").symlink_to(graded_lab.venv)
    for project in ("nova", "python-novaclient"):
        subprocess.run(["git", "clone", "-q", str(graded_lab.checkout(project)), str(dest / "stack" / project)], check=True)
    for bug_id in bug_ids:
        project = catalog.bugs[bug_id].project
        subprocess.run(["git", "-C", str(dest / "stack" / project), "apply", str(solution(bug_id, "fix"))], check=True)
    return dest


def _grade_cli(graded_lab, *args: str, bugs: tuple[str, ...] = EVERY_PROJECT) -> dict:
    out = subprocess.run([sys.executable, "-c", CLI, "grade", *args, "--lab", str(graded_lab.root), "--format", "json",
                          "--bugs", ",".join(bugs)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _verdicts(grade: dict) -> dict[str, str]:
    return {b["id"]: (b["verdict"], b["reason"]) for b in grade["bugs"]}


def test_reference_fixes_of_both_projects_are_fixed_in_every_mode(graded_lab, tmp_path):
    """A right fix of a python-novaclient bug was `error` ("not planted in the
    submission's python-novaclient baseline") in every mode of grade, since a submission
    was nova's change only. Each bug's reference fix, nova's and python-novaclient's, is
    `fixed` from a lab (--checkout), from one patch of both (--patch), and in a class
    (--submissions) of a lab, a patch and a folder `debuglab collect` wrote. Two bugs of
    each project (the two client bugs share their file): ~35 s on 2 cores. The whole
    catalog through --checkout is ~80 s more on an idle machine, which CI's budget does
    not have; `bugs verify` proves every reference fix, and class_grades three more."""
    want = {b: FIXED for b in EVERY_PROJECT}
    checkout = student_lab(graded_lab, tmp_path / "alice", EVERY_PROJECT)
    (graded,) = _grade_cli(graded_lab, "--checkout", str(checkout))["grades"]
    assert {b: v for b, (v, _) in _verdicts(graded).items()} == want, _verdicts(graded)

    both = tmp_path / "bob.patch"
    both.write_text("".join(solution(b, "fix").read_text() for b in EVERY_PROJECT))
    (graded,) = _grade_cli(graded_lab, "--patch", str(both))["grades"]
    assert {b: v for b, (v, _) in _verdicts(graded).items()} == want, _verdicts(graded)

    subs = tmp_path / "class"
    subs.mkdir()
    student_lab(graded_lab, subs / "carol", EVERY_PROJECT)
    shutil.copy(both, subs / "dave.patch")
    collected = subs / "erin"  # as `debuglab collect` writes it: a patch per project
    collected.mkdir()
    catalog = Catalog.load(ROOT / "bugs")
    record = "[projects.nova]\npatch = \"nova.patch\"\n[projects.python-novaclient]\npatch = \"python-novaclient.patch\"\n"
    (collected / "submission.toml").write_text('student = "erin"\n' + record)
    for project in ("nova", "python-novaclient"):
        (collected / f"{project}.patch").write_text("".join(
            solution(b, "fix").read_text() for b in EVERY_PROJECT if catalog.bugs[b].project == project))
    data = _grade_cli(graded_lab, "--submissions", str(subs), "--gradebook", str(tmp_path / "book"))
    got = {g["student"]: _verdicts(g) for g in data["grades"]}
    assert set(got) == {"carol", "dave", "erin"}
    for name, verdicts in got.items():
        assert {b: v for b, (v, _) in verdicts.items()} == want, (name, verdicts)


def test_four_graders_at_once_each_get_their_verdict(graded_lab, tmp_path):
    """Three `debuglab grade` at once on one machine, two answered `error` (the
    test worker exited with -9): each grader numbered its jobs' uids from the same base,
    and one job's cleanup killed every process of that uid, the other graders' jobs too.
    Four real graders of a right fix, started together: four `fixed`."""
    bug = "scheduler-stale-aggregate-host"
    fixed = student(graded_lab, tmp_path, "fixed", solution(bug, "fix"))
    argv = [sys.executable, "-c", CLI, "grade", "--checkout", str(fixed), "--lab", str(graded_lab.root),
            "--bugs", bug, "--format", "json"]
    start = time.monotonic()
    graders = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [g.communicate(timeout=900) for g in graders]
    seconds = time.monotonic() - start
    verdicts = []
    for g, (out, err) in zip(graders, outs):
        assert g.returncode == 0, err
        (entry,) = json.loads(out)["grades"][0]["bugs"]
        verdicts.append((entry["verdict"], entry["reason"]))
    assert [v for v, _ in verdicts] == [FIXED] * 4, (verdicts, f"{seconds:.0f} s")


def test_check_spends_no_hint_on_an_error_and_keeps_its_log(graded_lab, tmp_path):
    """A `check` that answered error revealed (spent) a hint. The worker dies
    at import here (os._exit): error, no hint, the feedback names a log in the lab that
    holds the worker's output."""
    mine = student_lab(graded_lab, tmp_path / "mylab", [BUG])
    target = mine / "stack" / "nova" / SCOPE
    target.write_text("import sys, os\nprint('debuglab-marker: leaving', flush=True)\nos._exit(0)\n" + target.read_text())
    out = subprocess.run([sys.executable, "-c", CLI, "check", BUG, "--dir", str(mine)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())  # rich wraps long lines
    assert "not tested (error)" in text and "Not your fault" in text and "ask your instructor" in text
    assert "hint 1/" not in text
    assert not (mine / ".debuglab" / "hints.json").exists() or \
        BUG not in json.loads((mine / ".debuglab" / "hints.json").read_text())["seen"]
    logs = list((mine / ".debuglab" / "logs").glob("*.log"))
    assert len(logs) == 1 and logs[0].name in text.replace(" ", ""), (logs, text)
    assert "debuglab-marker: leaving" in logs[0].read_text() and "never reported" in logs[0].read_text()


def test_retry_errors_regrades_only_the_bugs_in_error(graded_lab, tmp_path):
    """`grade --submissions DIR --gradebook OUT --retry-errors` reads OUT's
    gradebook and grades again only what was `error` there: alice's error becomes her
    real verdict; bob's (deliberately wrong) `not-fixed` is left as it was, never
    regraded; a newcomer absent from the gradebook is not graded either."""
    from debuglab.grade import reports
    from debuglab.grade.verdict import error, untouched

    bug = Catalog.load(ROOT / "bugs").bugs[BUG]
    subs, book = tmp_path / "subs", tmp_path / "book"
    subs.mkdir()
    book.mkdir()
    for name in ("alice", "bob", "newcomer"):
        shutil.copy(solution(BUG, "fix"), subs / f"{name}.patch")
    previous = [Grade("alice", str(subs / "alice.patch"), (error(bug, "the test worker exited with code -9"),)),
                Grade("bob", str(subs / "bob.patch"), (untouched(bug),))]
    (book / "grades.json").write_text(reports.to_json(previous))
    out = subprocess.run([sys.executable, "-c", CLI, "grade", "--submissions", str(subs), "--gradebook", str(book),
                          "--retry-errors", "--lab", str(graded_lab.root), "--format", "json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "retrying 1 error(s) of 1 submission(s)" in out.stderr
    got = {g["student"]: g["bugs"][0]["verdict"] for g in json.loads(out.stdout)["grades"]}
    assert got == {"alice": FIXED, "bob": NOT_FIXED}
    rows = {r[0]: r for r in csv.reader(io.StringIO((book / "gradebook.csv").read_text()))}
    assert rows["alice"][1:5] == ["1", "1", "1", "0"] and rows["bob"][1:5] == ["0", "0", "1", "0"]
    assert {g.student: g.verdict(BUG).verdict for g in reports.read_gradebook(book)} == got
