"""Verdicts: what a bug's test run (read from its subunit stream) means for a student.

fixed        every fail_to_pass and pass_to_pass test reported success
not-fixed    no change in the bug's scope (nothing ran), or a fail_to_pass test failed
regression   every fail_to_pass test passed, but a pass_to_pass test failed
rejected     the change may not be graded: a symlink or binary change in scope, a diff
             that does not apply, a tampered test runner (the canary), results the
             worker did not write or tests that did not run as written (the audit)
error        the run could not finish: timeout, crash, os._exit, a killed worker. Never a
             verdict on the fix: it costs the student nothing (no score, no hint), says
             so, and names a log; `grade --retry-errors` grades such bugs again
"""

from __future__ import annotations

from dataclasses import dataclass, field

from debuglab.catalog.model import Bug
from debuglab.core.testrun import Run, audit_stream
from debuglab.grade.scope import NotApplied

FIXED, NOT_FIXED, REGRESSION, REJECTED, ERROR = "fixed", "not-fixed", "regression", "rejected", "error"
VERDICTS = (FIXED, NOT_FIXED, REGRESSION, REJECTED, ERROR)
SHOWN = 5


@dataclass(frozen=True)
class BugVerdict:
    bug_id: str
    title: str
    verdict: str  # one of VERDICTS
    reason: str  # for the instructor: why, in one line (may name test ids)
    feedback: str  # for the student: never a hidden test's id or source
    score: float = 0.0
    max_score: float = 1.0
    files: tuple[str, ...] = ()  # the in-scope files whose change was graded
    fail_to_pass: tuple[int, int] = (0, 0)  # passed, total
    pass_to_pass: tuple[int, int] = (0, 0)
    failing: tuple[str, ...] = ()  # test ids that did not pass (instructor only)
    seconds: float = 0.0
    ran: bool = False  # whether any test ran
    log: str | None = None  # for an error: the log that says what went wrong

    @property
    def fixed(self) -> bool:
        return self.verdict == FIXED

    @property
    def graded(self) -> bool:
        """False for an error: the fix was not judged, and counts neither way."""
        return self.verdict != ERROR


@dataclass(frozen=True)
class Grade:
    student: str
    source: str
    verdicts: tuple[BugVerdict, ...]
    not_applied: tuple[NotApplied, ...] = ()
    seconds: float = 0.0
    sandbox: tuple[str, ...] = ()
    problem: str | None = None  # the submission could not be read at all
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def score(self) -> float:
        return sum(v.score for v in self.verdicts)

    @property
    def max_score(self) -> float:
        return sum(v.max_score for v in self.verdicts)

    def verdict(self, bug_id: str) -> BugVerdict:
        return next(v for v in self.verdicts if v.bug_id == bug_id)


def untouched(bug: Bug) -> BugVerdict:
    return BugVerdict(bug.id, bug.title, NOT_FIXED, "no change in the bug's scope: nothing ran",
                      f"No change of yours touches the code of this bug. {bug.feedback.not_fixed}",
                      fail_to_pass=(0, len(bug.fail_to_pass)), pass_to_pass=(0, len(bug.pass_to_pass)))


def rejected(bug: Bug, reasons: tuple[str, ...] | list[str], files: tuple[str, ...] = ()) -> BugVerdict:
    text = "; ".join(reasons)
    return BugVerdict(bug.id, bug.title, REJECTED, text, f"Your change was not graded: {text}.", files=files)


def error_feedback(what: str, log: str | None = None) -> str:
    """What a student reads for an error: not their fault, what to do, where the log is."""
    return (f"Not your fault: the grader could not finish testing your change ({what}). This is no verdict "
            "on your fix; it costs you nothing and uses none of your hints. Run the check again; if this "
            "happens again, ask your instructor" + (f" and show them the log {log}" if log else "") + ".")


def error(bug: Bug, reason: str, *, seconds: float = 0.0, files: tuple[str, ...] = (), ran: bool = False,
          log: str | None = None) -> BugVerdict:
    return BugVerdict(bug.id, bug.title, ERROR, reason, error_feedback(reason, log),
                      files=files, seconds=seconds, ran=ran, log=log)


def _count(run: Run, ids: tuple[str, ...]) -> tuple[int, int]:
    return sum(run.outcomes[i].passed for i in ids), len(ids)


def _import_problem(run: Run, ids: tuple[str, ...]) -> str | None:
    """The last line of a module-loading traceback (the student's own error), if any."""
    for test_id in ids:
        details = run.outcomes[test_id].details
        if details.startswith("cannot load "):
            lines = [line for line in details.strip().splitlines() if line.strip()]
            return lines[-1][:300] if lines else None
    return None


def judge(bug: Bug, run: Run, canary: dict[str, str], files: tuple[str, ...], timeout: float,
          log: str | None = None) -> BugVerdict:
    """Every expected id must report success in the stream and the worker must end cleanly;
    the canary must report exactly its expected statuses. `log`: where an error's log
    will be kept (named in its feedback)."""
    base = dict(bug_id=bug.id, title=bug.title, files=files, seconds=run.seconds, ran=True,
                fail_to_pass=_count(run, bug.fail_to_pass), pass_to_pass=_count(run, bug.pass_to_pass))
    failing = tuple(i for i in bug.test_ids if not run.outcomes[i].passed)
    audit = audit_stream(run.stream, run.nonce) if run.stream is not None else None
    if audit is not None and (audit.forged or audit.integrity):
        what = "; ".join((*audit.forged, *audit.integrity)[:3])
        kind = "results the test worker did not write" if audit.forged else "tests that did not run as written"
        return BugVerdict(**base, verdict=REJECTED, reason=f"tampering: {kind}: {what}", failing=failing,
                          feedback="Your change was not graded: while it ran, test results were faked "
                                   "or the tests were changed. A fix changes nova's behaviour, never the "
                                   "tests, their results or the runner.")
    tampered = [i for i, want in canary.items() if want == "fail" and run.outcomes[i].status == "success"]
    if tampered:
        reason = (f"the test runner was tampered with: {len(tampered)} canary test(s) that must fail "
                  "reported success")
        return BugVerdict(**base, verdict=REJECTED, reason=reason, failing=failing,
                          feedback="Your change was not graded: while it was imported, the test runner "
                                   "reported success for tests that must fail. A fix changes nova's "
                                   "behaviour, never the tests or the runner.")
    if run.returncode is None:
        reason = f"timed out after {timeout:.0f} s (an endless loop, or a hang)"
        return BugVerdict(**base, verdict=ERROR, reason=reason, failing=failing, log=log,
                          feedback=error_feedback(f"the tests {reason}", log))
    missing = [i for i in (*bug.test_ids, *canary) if run.outcomes[i].status in ("missing", "inprogress")]
    unfinished = audit is not None and not audit.finished
    if missing or run.returncode != 0 or unfinished:
        what = (f"{len(missing)} test(s) never reported a result" if missing
                else "its closing record is missing" if unfinished else "every test reported")
        reason = f"the test worker exited with code {run.returncode} and {what} (a crash, os._exit or a kill)"
        return BugVerdict(**base, verdict=ERROR, reason=reason, failing=failing, log=log,
                          feedback=error_feedback("the test process ended early: a crash, os._exit, or "
                                                  "running out of memory or processes", log))
    f2p = [i for i in bug.fail_to_pass if not run.outcomes[i].passed]
    p2p = [i for i in bug.pass_to_pass if not run.outcomes[i].passed]
    shown = ", ".join(f"{i} ({run.outcomes[i].status})" for i in (f2p or p2p)[:SHOWN])
    if f2p:
        reason = f"{len(f2p)} of {len(bug.fail_to_pass)} fail_to_pass test(s) do not pass: {shown}"
        if p2p:
            reason += f"; and {len(p2p)} pass_to_pass test(s) no longer pass"
        feedback = bug.feedback.not_fixed
        problem = _import_problem(run, bug.test_ids)
        if problem:
            feedback += f" (nova's tests could not import your change: {problem})"
        return BugVerdict(**base, verdict=NOT_FIXED, reason=reason, feedback=feedback, failing=failing)
    if p2p:
        reason = f"fixed, but {len(p2p)} of {len(bug.pass_to_pass)} pass_to_pass test(s) no longer pass: {shown}"
        feedback = ("The bug's own symptom is gone, but your change breaks behaviour that worked before "
                    f"({len(p2p)} check(s) that passed before now fail). {bug.feedback.not_fixed}")
        return BugVerdict(**base, verdict=REGRESSION, reason=reason, feedback=feedback, failing=failing)
    return BugVerdict(**base, verdict=FIXED, reason="every fail_to_pass and pass_to_pass test passes",
                      feedback=bug.feedback.fixed, score=1.0)
