"""The grader's fast parts, on real diffs from real git repositories, real worker
processes and real files: scoping, submissions, the sandboxed worker's path isolation,
verdicts from real subunit streams, reports and hints."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from debuglab.catalog.model import Catalog
from debuglab.core import testrun
from debuglab.grade import hints, reports, scope, submission
from debuglab.grade.copy import CANARY_SOURCE
from debuglab.grade.errors import SubmissionError
from debuglab.grade.verdict import (
    ERROR,
    FIXED,
    NOT_FIXED,
    REGRESSION,
    REJECTED,
    BugVerdict,
    Grade,
    judge,
    untouched,
)

SCOPE = "nova/scheduler/filters/num_instances_filter.py"
BUG = "num-instances-off-by-one"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path) -> Path:
    """A small git checkout shaped like nova, one baseline commit."""
    root = tmp_path / "nova"
    for rel, text in {SCOPE: "x = 1\n", "nova/utils.py": "y = 2\n", "nova/tests/unit/test_a.py": "t = 1\n",
                      "nova/data.bin": "\x00\x01\x02"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root.parent, "init", "-q", "nova")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "baseline")
    return root


@pytest.fixture(scope="module")
def catalog(kit_module) -> Catalog:
    return Catalog.load(kit_module.bugs_dir)


@pytest.fixture(scope="module")
def kit_module():
    from debuglab.core.kit import Kit

    return Kit(Path(__file__).resolve().parents[1])


def _split(repo: Path, catalog: Catalog):
    sub = submission.from_checkout(repo)
    return sub, scope.split(scope.parse(sub.patch), list(catalog.bugs.values()))


def test_in_scope_hunks_kept_everything_else_listed_not_applied(repo, catalog):
    (repo / SCOPE).write_text("x = 2\n")
    (repo / "nova/utils.py").write_text("y = 3\n")
    (repo / "nova/tests/unit/test_a.py").write_text("t = 'rigged'\n")
    for name in ("conftest.py", "sitecustomize.py", "usercustomize.py", "evil.pth", "tox.ini", ".stestr.conf",
                 "setup.cfg", "nova/conftest.py"):
        (repo / name).write_text("import os\n")
    sub, scoped = _split(repo, catalog)
    mine = scoped.per_bug[BUG]
    assert mine.files == (SCOPE,) and not mine.rejected
    assert "+x = 2" in mine.patch and "rigged" not in mine.patch and "y = 3" not in mine.patch
    reasons = {n.path: n.reason for n in scoped.not_applied}
    assert reasons["nova/utils.py"] == "outside the scope of the bugs graded"
    for name in ("nova/tests/unit/test_a.py", "conftest.py", "sitecustomize.py", "usercustomize.py", "evil.pth",
                 "tox.ini", ".stestr.conf", "setup.cfg", "nova/conftest.py"):
        assert "never taken from a student" in reasons[name], name
    for other in catalog.bugs:
        if other != BUG:
            assert not scoped.per_bug[other].touched


def test_symlink_in_scope_is_rejected_with_the_reason(repo, catalog):
    (repo / SCOPE).unlink()
    (repo / SCOPE).symlink_to("/etc/passwd")
    _, scoped = _split(repo, catalog)
    assert scoped.per_bug[BUG].rejected and "symlink" in scoped.per_bug[BUG].rejected[0]


def test_binary_in_scope_is_rejected(catalog):
    text = (f"diff --git a/{SCOPE} b/{SCOPE}\nindex 1..2 100644\nGIT binary patch\nliteral 2\nJcmZQz0ssI600RI3\n\n"
            "literal 2\nJcmZQz1ONa700IC2\n\n")
    scoped = scope.split(scope.parse(text), list(catalog.bugs.values()))
    assert "binary" in scoped.per_bug[BUG].rejected[0]


def test_rename_and_delete(repo, catalog):
    git(repo, "mv", SCOPE, "nova/scheduler/filters/moved.py")
    (repo / "nova/utils.py").unlink()
    _, scoped = _split(repo, catalog)
    assert "renamed" in scoped.per_bug[BUG].rejected[0]
    assert any(n.path == "nova/utils.py" for n in scoped.not_applied)


def test_deleting_the_scoped_file_is_a_change_in_scope(repo, catalog):
    (repo / SCOPE).unlink()
    _, scoped = _split(repo, catalog)
    (change,) = scoped.per_bug[BUG].changes
    assert change.kind == "deleted" and change.path == SCOPE


def test_huge_change_in_scope_rejected_huge_change_elsewhere_not_applied(repo, catalog):
    big = "".join(f"line_{n} = {n}  # {'x' * 60}\n" for n in range(700_000))  # ~50 MB
    (repo / SCOPE).write_text(big)
    (repo / "nova/utils.py").write_text(big[: 1 << 20])
    _, scoped = _split(repo, catalog)
    assert "MB of diff" in scoped.per_bug[BUG].rejected[0]
    assert any(n.path == "nova/utils.py" for n in scoped.not_applied)


def test_not_a_git_repo_and_not_a_diff(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(SubmissionError, match="not a git repository"):
        submission.from_checkout(tmp_path / "plain")
    with pytest.raises(SubmissionError, match="not a diff"):
        scope.parse("hello, I fixed it\n")
    assert scope.parse("") == []


def test_gather_keeps_unreadable_entries_with_their_problem(tmp_path, repo):
    subs = tmp_path / "class"
    subs.mkdir()
    (subs / "alice.patch").write_text("diff --git a/x b/x\n")
    (subs / "bob").mkdir()
    (subs / "notes.txt").write_text("ignored")
    shutil.copytree(repo, subs / "carol", symlinks=True)
    found = {s.student: s for s in submission.gather(subs)}
    assert set(found) == {"alice", "bob", "carol"}
    assert found["bob"].problem and "neither a lab" in found["bob"].problem
    assert found["carol"].problem is None and found["alice"].patch.startswith("diff --git")


def test_a_submission_that_is_a_link_is_refused_and_nothing_outside_is_read(tmp_path, repo):
    """Mallory.patch -> alice.patch was graded as mallory's own work, and
    trudy -> a lab elsewhere graded a lab outside the folder."""
    subs = tmp_path / "class"
    subs.mkdir()
    (subs / "alice.patch").write_text("diff --git a/x b/x\n")
    os.symlink(subs / "alice.patch", subs / "mallory.patch")
    os.symlink(repo, subs / "trudy")
    (subs / "eve").mkdir()  # a folder whose one patch is a link to a classmate's
    os.symlink(subs / "alice.patch", subs / "eve" / "fix.patch")
    (subs / "dave").mkdir()  # a lab whose checkout lies elsewhere, through a linked folder
    (subs / "dave" / "lab.toml").write_text("")
    os.symlink(repo.parent, subs / "dave" / "stack")
    found = {s.student: s for s in submission.gather(subs)}
    assert found["alice"].problem is None
    for student in ("mallory", "trudy", "eve"):
        assert found[student].patch == "" and "symbolic link" in found[student].problem, found[student]
    assert found["dave"].patch == "" and "outside the submissions folder" in found["dave"].problem, found["dave"]


WORKER_TEST = '''
import sys
import testtools

class T(testtools.TestCase):
    def test_isolated(self):
        assert "sitecustomize" not in sys.modules, "sitecustomize ran"
        try:
            import student_mod
        except ImportError:
            pass
        else:
            raise AssertionError("a path from a .pth outside the venv stayed on sys.path")
'''


def test_python_S_worker_drops_sitecustomize_and_foreign_pth_paths(tmp_path):
    """The sandboxed worker: a sitecustomize in a site dir does not run, and a .pth's link
    to a folder outside the venv (an editable install's link to a student's checkout) is
    dropped from sys.path."""
    import site as site_module

    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "test_iso.py").write_text(WORKER_TEST)
    student = tmp_path / "student"
    student.mkdir()
    (student / "student_mod.py").write_text("")
    fake_site = tmp_path / "site"
    fake_site.mkdir()
    (fake_site / "link.pth").write_text(f"{student}\n")
    (fake_site / "sitecustomize.py").write_text("import os\nos._exit(0)\n")
    real_sites = [p for p in site_module.getsitepackages() if Path(p).is_dir()]
    worker_args = [a for p in (*real_sites, str(fake_site)) for a in ("--site-packages", p)]
    # without isolation the .pth link would be on sys.path: the check is not vacuous
    assert (student / "student_mod.py").is_file()
    run = testrun.run_tests(Path(sys.executable), tree, ["pkg.test_iso.T.test_isolated"], work_dir=tmp_path / "w",
                            python_args=("-S", "-E", "-s", "-B"), worker_args=worker_args)
    assert run.worker_ok, run.log.read_text()
    assert run.outcomes["pkg.test_iso.T.test_isolated"].passed, run.outcomes


def test_the_canary_catches_a_patched_testcase_and_judges_real_streams(tmp_path, catalog):
    """A real worker run: with testtools/unittest patched at import so that every test
    reports success, the canary's must-fail tests pass, and the verdict is rejected."""
    bug = catalog.bugs[BUG]
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "test_canary.py").write_text(CANARY_SOURCE)
    canary = {f"pkg.test_canary.{i}": s for i, s in (
        ("Canary.test_must_fail_assert_equal", "fail"), ("Canary.test_must_fail_raise", "fail"),
        ("Canary.test_must_fail_fail", "fail"), ("Canary.test_must_pass", "success"),
        ("UnittestCanary.test_must_fail_unittest", "fail"))}
    honest = testrun.run_tests(Path(sys.executable), tree, list(canary), work_dir=tmp_path / "w1")
    assert {i: honest.outcomes[i].status for i in canary} == canary
    (tree / "pkg" / "__init__.py").write_text(textwrap.dedent('''
        import testtools, unittest
        def rigged(self, result=None):
            result.startTest(self); result.addSuccess(self); result.stopTest(self)
        testtools.TestCase.run = rigged
        unittest.TestCase.run = rigged
    '''))
    rigged = testrun.run_tests(Path(sys.executable), tree, list(canary), work_dir=tmp_path / "w2")
    assert all(rigged.outcomes[i].passed for i in canary)  # the tampering "works" ...
    fake = testrun.Run({**{i: testrun.Outcome(i, "success") for i in bug.test_ids}, **rigged.outcomes},
                       rigged.reported, 0, 1.0, rigged.log)
    assert judge(bug, fake, canary, (SCOPE,), 60).verdict == REJECTED  # ... and is caught
    ok = testrun.Run({**{i: testrun.Outcome(i, "success") for i in bug.test_ids}, **honest.outcomes},
                     honest.reported, 0, 1.0, honest.log)
    assert judge(bug, ok, canary, (SCOPE,), 60).verdict == FIXED
    exited = testrun.Run({**{i: testrun.Outcome(i, "success") for i in bug.test_ids[:1]},
                          **{i: testrun.Outcome(i, "missing") for i in bug.test_ids[1:]}, **honest.outcomes},
                         honest.reported, 0, 1.0, honest.log)
    assert judge(bug, exited, canary, (SCOPE,), 60).verdict == ERROR
    timed_out = testrun.Run(ok.outcomes, ok.reported, None, 60.0, ok.log)
    assert judge(bug, timed_out, canary, (SCOPE,), 60).verdict == ERROR
    p2p_broken = dict(ok.outcomes)
    p2p_broken[bug.pass_to_pass[0]] = testrun.Outcome(bug.pass_to_pass[0], "fail")
    regression = judge(bug, testrun.Run(p2p_broken, ok.reported, 0, 1.0, ok.log), canary, (SCOPE,), 60)
    assert regression.verdict == REGRESSION and regression.score == 0
    assert bug.pass_to_pass[0] not in regression.feedback  # never an id to the student


def _grades(catalog) -> list[Grade]:
    bug = catalog.bugs[BUG]
    fixed = BugVerdict(bug.id, bug.title, FIXED, "all pass", bug.feedback.fixed, score=1.0, ran=True,
                       fail_to_pass=(5, 5), pass_to_pass=(31, 31), files=(SCOPE,))
    evil = "=HYPERLINK(\"http://x\")<script>alert(1)</script>"
    return [
        Grade("alice", "/s/alice.patch", (fixed,), (scope.NotApplied("tox.ini", "never"),), 3.0, ("own-uid",)),
        Grade(evil, "/s/evil.patch", (untouched(bug),), (), 0.1),
    ]


def test_reports_json_junit_csv_html(catalog):
    grades = _grades(catalog)
    data = json.loads(reports.to_json(grades))
    assert data["schema"] == "debuglab.grade/1"
    alice = data["grades"][0]
    assert alice["score"] == 1 and alice["bugs"][0]["verdict"] == FIXED
    assert alice["bugs"][0]["fail_to_pass"] == {"passed": 5, "total": 5}
    assert alice["not_applied"] == [{"path": "tox.ini", "reason": "never"}]
    student_view = reports.as_dict(grades[0], student_view=True)
    assert "failing" not in student_view["bugs"][0] and "reason" not in student_view["bugs"][0]

    junit = ET.fromstring(reports.to_junit(grades))
    suites = junit.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["0", "1"]
    assert suites[1].find("testcase/failure").get("type") == NOT_FIXED

    rows = list(csv.reader(io.StringIO(reports.to_csv(grades))))
    assert rows[0] == ["student", BUG, "total", "max", "errors", f"{BUG} verdict"]
    assert rows[1] == ["alice", "1", "1", "1", "0", FIXED]
    assert rows[2][0].startswith("'=")  # no formula injection

    page = reports.to_html(grades)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert page.count("<tr>") == 4  # head, two students, footer


def test_hints_one_at_a_time_remembered_in_the_workspace(tmp_path, catalog):
    bug = catalog.bugs[BUG]
    assert hints.shown(tmp_path, bug) == []
    first = hints.reveal_next(tmp_path, bug)
    assert (first.number, first.text) == (1, bug.hints[0])
    second = hints.reveal_next(tmp_path, bug)
    assert (second.number, second.text) == (2, bug.hints[1])
    assert [h.number for h in hints.shown(tmp_path, bug)] == [1, 2]
    assert json.loads((tmp_path / ".debuglab" / "hints.json").read_text())["seen"] == {BUG: 2}
    for _ in range(len(bug.hints) - 2):
        assert hints.reveal_next(tmp_path, bug) is not None
    assert hints.reveal_next(tmp_path, bug) is None
    (tmp_path / ".debuglab" / "hints.json").write_text("garbage{")
    assert hints.reveal_next(tmp_path, bug).number == 1


def _png_pixels(data: bytes) -> tuple[int, int, set[tuple[int, int, int]]]:
    """Width, height and the set of colours of an 8-bit RGB(A) non-interlaced PNG."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    prev, colours, i = bytearray(stride), set(), 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[x:x + 3]) for x in range(0, stride, channels))
        prev = line
    return width, height, colours


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed")
def test_html_gradebook_renders_in_headless_chromium(tmp_path, catalog):
    page = tmp_path / "gradebook.html"
    page.write_text(reports.to_html(_grades(catalog)))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(["chromium", *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    assert '<table id="gradebook">' in dom and "1 / 1 fixed" not in dom and "1 / 2 fixed" in dom
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", *flags, f"--screenshot={shot}", "--window-size=1000,600", page.as_uri()],
                   capture_output=True, timeout=120)
    width, height, colours = _png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 600)
    assert (0xD8, 0xF5, 0xD8) in colours  # a fixed cell, green
    assert (0xFF, 0xF3, 0xC4) in colours  # a not-fixed cell, yellow


# an error never costs the student

def _class_with_an_error(catalog, tmp_path) -> list[Grade]:
    from debuglab.grade.verdict import error, rejected

    bug = catalog.bugs[BUG]
    log = tmp_path / "logs" / "bob--num-instances-off-by-one.log"
    fixed = BugVerdict(bug.id, bug.title, FIXED, "all pass", bug.feedback.fixed, score=1.0, ran=True,
                       fail_to_pass=(5, 5), pass_to_pass=(31, 31), files=(SCOPE,))
    return [
        Grade("alice", "/s/alice.patch", (fixed,)),
        Grade("bob", "/s/bob.patch", (error(bug, "the test worker exited with code -9", log=str(log)),)),
        Grade("carol", "/s/carol.patch", (untouched(bug),)),
        Grade("dave", "/s/dave.patch", (rejected(bug, ["a symlink"]),)),
    ]


def test_an_errors_feedback_says_it_is_not_the_students_fault_what_to_do_and_the_log(catalog):
    from debuglab.grade.verdict import error

    v = error(catalog.bugs[BUG], "the test server did not start", log="/lab/.debuglab/logs/x.log")
    assert v.verdict == ERROR and not v.graded and v.score == 0 and v.log == "/lab/.debuglab/logs/x.log"
    text = v.feedback
    assert "Not your fault" in text and "no verdict on your fix" in text and "uses none of your hints" in text
    assert "Run the check again" in text and "ask your instructor" in text and "/lab/.debuglab/logs/x.log" in text
    # judged errors too (a timeout, a killed worker) name the log
    bug = catalog.bugs[BUG]
    run = testrun.Run({i: testrun.Outcome(i, "missing") for i in bug.test_ids}, {}, -9, 1.0, Path("/dev/null"))
    v = judge(bug, run, {}, (SCOPE,), 60, log="/logs/y.log")
    assert v.verdict == ERROR and v.log == "/logs/y.log" and "Not your fault" in v.feedback and "/logs/y.log" in v.feedback
    assert "nova.tests" not in v.feedback


def test_reports_mark_errors_apart_from_not_fixed(catalog, tmp_path):
    grades = _class_with_an_error(catalog, tmp_path)
    rows = {r[0]: r for r in csv.reader(io.StringIO(reports.to_csv(grades)))}
    assert rows["student"] == ["student", BUG, "total", "max", "errors", f"{BUG} verdict"]
    assert rows["bob"] == ["bob", "", "0", "1", "1", "error (not graded)"]  # no score: not a zero
    assert rows["carol"] == ["carol", "0", "0", "1", "0", NOT_FIXED]
    assert rows["dave"][1] == "0" and rows["dave"][-1] == REJECTED

    data = json.loads(reports.to_json(grades))
    by = {g["student"]: g for g in data["grades"]}
    assert by["bob"]["errors"] == [BUG] and by["bob"]["bugs"][0]["graded"] is False
    assert by["bob"]["bugs"][0]["log"].endswith("bob--num-instances-off-by-one.log")
    assert by["carol"]["errors"] == [] and by["carol"]["bugs"][0]["graded"] is True

    suites = {s.get("name"): s for s in ET.fromstring(reports.to_junit(grades)).findall("testsuite")}
    assert suites["bob"].get("errors") == "1" and suites["bob"].get("failures") == "0"
    assert suites["bob"].find("testcase/error").get("type") == ERROR
    assert "bob--num-instances-off-by-one.log" in suites["bob"].find("testcase/error").get("message")
    for name in ("carol", "dave"):  # verdicts on the student's work: failures, never errors
        assert suites[name].get("errors") == "0" and suites[name].get("failures") == "1"

    page = reports.to_html(grades)
    assert '<td class="error"' in page and "error (not graded)" in page
    assert "td.error{background:#d6e4f5" in page and "td.not-fixed{background:#fff3c4}" in page
    assert "1 bug(s) in error" in page and "--retry-errors" in page and "1 not graded (error)" in page
    assert "bob--num-instances-off-by-one.log" in page


def test_a_gradebook_reads_back_and_a_retry_replaces_only_the_errors(catalog, tmp_path):
    from debuglab.grade.errors import GradeError

    grades = _class_with_an_error(catalog, tmp_path)
    book = tmp_path / "book"
    book.mkdir()
    (book / "grades.json").write_text(reports.to_json(grades))
    back = reports.read_gradebook(book)
    assert back == grades
    assert reports.errors_of(back) == {"bob": (BUG,)} and reports.errors_of(back, ["other-bug"]) == {}
    bug = catalog.bugs[BUG]
    regraded = Grade("bob", "/s/bob.patch", (BugVerdict(bug.id, bug.title, FIXED, "all pass", "ok", score=1.0),), (),
                     2.0)
    merged = reports.merge(back, [regraded])
    assert [g.student for g in merged] == ["alice", "bob", "carol", "dave"]
    assert merged[1].verdict(BUG).verdict == FIXED and merged[1].score == 1
    assert merged[0] == back[0] and merged[2:] == back[2:]
    with pytest.raises(GradeError, match="no previous gradebook"):
        reports.read_gradebook(tmp_path / "nowhere")


def test_check_spends_no_hint_on_an_error(tmp_path, catalog, monkeypatch):
    """The check command itself: a verdict of error prints its feedback (not the student's
    fault, the log) and reveals no hint; a not-fixed verdict reveals the next one."""
    from click.testing import CliRunner

    from debuglab.grade import commands, grader
    from debuglab.grade.verdict import error

    lab = tmp_path / "lab"
    (lab / "stack" / "nova").mkdir(parents=True)
    (lab / "lab.toml").write_text(f'[lab]\nbugs = ["{BUG}", "flavor-disk-ephemeral"]\n')
    bug, other = catalog.bugs[BUG], catalog.bugs["flavor-disk-ephemeral"]
    seen = {}

    def fake_grade(sub, bug_ids, python, *, options, on_done):
        seen["log_dir"] = getattr(options, "log_dir", None)
        log = (seen["log_dir"] or tmp_path) / "lab--num-instances-off-by-one.log"
        return Grade("lab", str(lab), (error(bug, "the test worker exited with code -9", log=str(log)),
                                       untouched(other)))

    monkeypatch.setattr(grader, "grade", fake_grade)
    monkeypatch.setattr(submission, "from_checkout", lambda *args, **kwargs: None)
    out = CliRunner().invoke(commands.check, ["--dir", str(lab)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert hints.seen(lab) == {"flavor-disk-ephemeral": 1}  # the error spent nothing
    assert seen["log_dir"] in (lab.resolve() / ".debuglab" / "logs", lab / ".debuglab" / "logs")
    assert "Not your fault" in out.output and "ask your instructor" in out.output
    assert "lab--num-instances-off-by-one.log" in out.output
    assert "1 bug(s) could not be tested, which is not your fault" in out.output
    assert other.hints[0] in out.output and bug.hints[0] not in out.output



def test_check_names_what_the_student_found_only_once_the_bug_is_fixed(tmp_path, kit_copy, monkeypatch):
    """The mechanism-level goals ([feedback] found) name the cause: `check` shows them for a
    fixed bug, never for one that is not fixed."""
    import re

    from click.testing import CliRunner

    from debuglab.grade import commands, grader

    for bug_id, line in ((BUG, "The filter counted the instance being built"),
                         ("flavor-disk-ephemeral", "The flavor's disk and ephemeral were swapped")):
        toml = kit_copy.bugs_dir / bug_id / "bug.toml"
        text = re.sub(r"(?ms)^found = \[.*?^\]\n", "", toml.read_text())  # the bug's own, if it has one
        toml.write_text(text.replace("[feedback]\n", f'[feedback]\nfound = ["{line}"]\n', 1))
    monkeypatch.setenv("DEBUGLAB_KIT", str(kit_copy.root))
    catalog = Catalog.load(kit_copy.bugs_dir)
    lab = tmp_path / "lab"
    (lab / "stack" / "nova").mkdir(parents=True)
    (lab / "lab.toml").write_text(f'[lab]\nbugs = ["{BUG}", "flavor-disk-ephemeral"]\n')
    fixed, other = catalog.bugs[BUG], catalog.bugs["flavor-disk-ephemeral"]
    monkeypatch.setattr(grader, "grade", lambda *args, **kwargs: Grade("lab", str(lab), (
        BugVerdict(fixed.id, fixed.title, FIXED, "all pass", fixed.feedback.fixed, score=1.0), untouched(other))))
    monkeypatch.setattr(submission, "from_checkout", lambda *args, **kwargs: None)
    out = CliRunner().invoke(commands.check, ["--dir", str(lab)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "what you found:" in out.output and "The filter counted the instance being built" in out.output
    assert "swapped" not in out.output

PACKAGES = {"nova": "nova", "python-novaclient": "novaclient"}
CLIENT_SCOPE = "novaclient/v2/shell.py"


def test_a_patch_is_split_by_project(catalog):
    """A patch's novaclient/ files are python-novaclient's change, the rest nova's."""
    def section(path, old, new):
        return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"

    text = section(SCOPE, "x = 1", "x = 2") + section(CLIENT_SCOPE, "a = 1", "a = 2") + section("tox.ini", "[a]", "[b]")
    parts = submission.parts(submission.Submission("s", Path("s.patch"), text), PACKAGES)
    assert set(parts) == {"nova", "python-novaclient"}
    assert SCOPE in parts["nova"].patch and "tox.ini" in parts["nova"].patch and CLIENT_SCOPE not in parts["nova"].patch
    assert parts["python-novaclient"].patch == section(CLIENT_SCOPE, "a = 1", "a = 2")
    only_nova = submission.parts(submission.Submission("s", Path("s.patch"), section(SCOPE, "x", "y")), PACKAGES)
    assert only_nova["python-novaclient"].patch == ""  # untouched: not-fixed, never "not planted"
    with pytest.raises(SubmissionError, match="not a diff"):
        submission.parts(submission.Submission("s", Path("s.patch"), "hello"), PACKAGES)


def test_a_lab_is_the_change_of_each_of_its_checkouts(tmp_path):
    """A lab folder (grade --checkout lab, check) is both checkouts' change,
    each with its own baseline and bugs; a lab's python-novaclient checkout alone is
    python-novaclient's; a folder `debuglab collect` wrote is its patches, by project."""
    lab = tmp_path / "lab"
    files = {"nova": (SCOPE, "x = 1\n"), "python-novaclient": (CLIENT_SCOPE, "a = 1\n")}
    record = "[lab]\nbugs = []\n"
    for project, (rel, text) in files.items():
        root = lab / "stack" / project
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_text(text)
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "baseline")
        base = git(root, "rev-parse", "HEAD").strip()
        record += f'[projects.{project}]\nbaseline_commit = "{base}"\nbugs = ["{project}-bug"]\n'
        (root / rel).write_text(text.replace("1", "2"))
    (lab / "lab.toml").write_text(record)
    sub = submission.from_checkout(lab)
    parts = submission.parts(sub, PACKAGES)
    assert parts["nova"].lab_bugs == ("nova-bug",) and "+x = 2" in parts["nova"].patch
    assert parts["python-novaclient"].lab_bugs == ("python-novaclient-bug",)
    assert "+a = 2" in parts["python-novaclient"].patch and CLIENT_SCOPE not in parts["nova"].patch
    client = submission.from_checkout(lab / "stack" / "python-novaclient")
    assert client.project == "python-novaclient" and client.lab_bugs == ("python-novaclient-bug",)

    subs = tmp_path / "class"
    (subs / "erin").mkdir(parents=True)
    for project, part in parts.items():
        (subs / "erin" / f"{project}.patch").write_text(part.patch)
    (subs / "erin" / "submission.toml").write_text(
        'student = "erin"\n[projects.nova]\npatch = "nova.patch"\n'
        '[projects.python-novaclient]\npatch = "python-novaclient.patch"\n')
    (erin,) = submission.gather(subs)
    assert erin.problem is None and erin.student == "erin"
    got = submission.parts(erin, PACKAGES)
    assert {k: v.patch for k, v in got.items()} == {k: v.patch for k, v in parts.items()}


def test_a_patch_path_with_a_detour_is_not_applied_with_its_plain_path_named(catalog):
    patch = ("diff --git a/nova/api/openstack/compute/views/../views/keypairs.py "
             "b/nova/api/openstack/compute/views/../views/keypairs.py\n"
             "--- a/nova/api/openstack/compute/views/../views/keypairs.py\n"
             "+++ b/nova/api/openstack/compute/views/../views/keypairs.py\n@@ -1 +1 @@\n-a\n+b\n")
    scoped = scope.split(scope.parse(patch), list(catalog.bugs.values()))
    (item,) = scoped.not_applied
    assert "detour through '..'" in item.reason and "'nova/api/openstack/compute/views/keypairs.py'" in item.reason
