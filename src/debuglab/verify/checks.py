"""Defects4J/SWE-bench-style checks that every bug behaves as its bug.toml promises:

- nothing a student sees before the fix names the cause (debuglab.verify.spoilers);
- pristine upstream: its fail_to_pass and pass_to_pass tests pass;
- bug injected: every fail_to_pass test fails, every pass_to_pass test passes;
- reference fix, then alternative fix, on top: all pass;
- the instructor's wrong fix (deletes the code or hard-codes a value), if any: some
  fail_to_pass test still fails, so the hidden tests cannot be gamed that way;
- the whole selection injected together: each bug's tests behave as they do alone;
- tiers 2 and 3 (no visible test may fail): nova's visible test modules named in each
  bug's `visible_modules` run on a tree with every tier 2/3 bug of the selection planted,
  one worker per module; a test that fails there and on pristine too is upstream's, not
  the bug's; any other failure is charged to the bugs that list its module and fail it
  on their own tree (or to all of them, when only the combination fails). A visible test
  that fails on pristine too is reported apart: upstream's, or a lab venv that does not
  suit nova (an unpinned SQLAlchemy 2.1 fails about 200 of nova's compute tests).

Each state is a scratch copy of the pristine tree (hard links; patches replace files),
run by one test worker; the workers run in parallel on all cores.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from debuglab.catalog.model import Bug, Catalog
from debuglab.core import proc, testrun
from debuglab.core.errors import DebuglabError
from debuglab.core.kit import Kit, cache_dir
from debuglab.lab import inject, upstream
from debuglab.lab.workspace import Workspace
from debuglab.verify import records, spoilers

CHECK_TITLES = {
    "spoilers": "nothing given away",
    "pristine": "pristine",
    "injected": "injected",
    "fix": "reference fix",
    "alternative": "alternative fix",
    "wrong": "wrong fix fails",
    "together": "all together",
    "visible": "visible tests",
}
NOT_FAILED = ("success", "skip", "xfail")
SHOWN = 5  # deviating test ids named per check


@dataclass(frozen=True)
class Check:
    ok: bool
    problems: tuple[str, ...] = ()
    summary: str = ""  # shown in the table beside the tick (e.g. how many visible tests ran)


@dataclass
class BugReport:
    bug_id: str
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())

    @property
    def problems(self) -> list[str]:
        return [f"{CHECK_TITLES[key]}: {p}" for key, check in self.checks.items() for p in check.problems]


@dataclass(frozen=True)
class Report:
    bugs: list[BugReport]
    seconds: float
    tests_run: int
    runs: int
    upstream_failures: tuple[str, ...] = ()  # visible tests that fail on pristine upstream too

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.bugs)


@dataclass(frozen=True)
class _State:
    """One tree to build and test: pristine plus `patches`, running `bugs`' tests."""

    key: str  # a CHECK_TITLES key
    project: upstream.Project
    bugs: tuple[Bug, ...]
    patches: tuple[Path, ...]
    module: str = ""  # a "visible" state runs this module of nova's tests, not the bugs' ids

    @property
    def name(self) -> str:
        if self.key == "visible":
            return f"visible-{self.module}"
        if self.key in ("pristine", "together"):  # one per project: their trees and streams must not meet
            return f"{self.key}-{self.project.name}"
        return f"{self.key}-{self.bugs[0].id}"

    @property
    def ids(self) -> list[str]:
        if self.module:
            return [self.module]
        if self.key == "wrong":  # judged on fail_to_pass alone
            return [i for bug in self.bugs for i in bug.fail_to_pass]
        return [i for bug in self.bugs for i in bug.test_ids]


def solution(kit: Kit, bug: Bug, kind: str) -> Path:
    """instructor/solutions/<id>/<kind>.patch (fix or alternative)."""
    return kit.solutions_dir / bug.id / f"{kind}.patch"


def verify(
    ws: Workspace,
    bug_ids: list[str],
    *,
    kit: Kit | None = None,
    jobs: int | None = None,
    record: bool = True,
    on_run: Callable[[int, int, str], None] = lambda done, total, label: None,
) -> Report:
    """Run every check of `bug_ids` (all when empty). With `record`, each bug that
    verifies gets its record (debuglab.verify.records); the test suite's own runs pass
    False, so that they leave the checkout as they found it."""
    kit = kit or Kit.default()
    bugs = Catalog.load(kit.bugs_dir, bug_ids).select(bug_ids)
    projects = upstream.load_lock(kit.upstream_lock)
    if not ws.python.exists():
        raise DebuglabError(f"{ws.python} is missing: rebuild the lab with `debuglab lab create --force`")
    states = []
    for project in projects.values():
        mine = tuple(b for b in bugs if b.project == project.name)
        if not mine:
            continue
        states.append(_State("pristine", project, mine, ()))
        for bug in mine:
            states.append(_State("injected", project, (bug,), (bug.inject_patch,)))
            for kind in ("fix", "alternative"):
                states.append(_State(kind, project, (bug,), (bug.inject_patch, solution(kit, bug, kind))))
            if solution(kit, bug, "wrong").is_file():
                states.append(_State("wrong", project, (bug,), (bug.inject_patch, solution(kit, bug, "wrong"))))
        if len(mine) > 1:
            states.append(_State("together", project, mine, tuple(b.inject_patch for b in mine)))
        tiered = tuple(b for b in mine if b.difficulty >= 2)
        for module in dict.fromkeys(m for b in tiered for m in b.visible_modules):
            listing = tuple(b for b in tiered if module in b.visible_modules)
            states.append(_State("visible", project, listing, tuple(b.inject_patch for b in tiered), module))

    reports = {bug.id: BugReport(bug.id) for bug in bugs}
    for bug in bugs:  # what a student sees before the fix never names the cause
        found = spoilers.leaks(bug, spoilers.seen_before_the_fix(bug, kit))
        reports[bug.id].checks["spoilers"] = Check(not found, tuple(found))
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=".verify-", dir=ws.root))
    tests_run = 0
    fix_seconds: dict[str, float] = {}
    upstream_failures: tuple[str, ...] = ()
    try:
        pristine = {p: _pristine_tree(ws, projects[p], [b for b in bugs if b.project == p], scratch)
                    for p in {s.project.name for s in states}}
        done = 0
        visible_runs = []
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            futures = [(s, pool.submit(_run_state, ws, s, pristine[s.project.name], scratch)) for s in states]
            for state, future in futures:
                run_or_error = future.result()
                done += 1
                on_run(done, len(states), f"{state.name} done")
                if isinstance(run_or_error, testrun.Run):
                    tests_run += len(run_or_error.reported)
                if state.key == "visible":
                    visible_runs.append((state, run_or_error))
                    continue
                for bug in state.bugs:
                    reports[bug.id].checks[state.key] = _judge(state, bug, run_or_error)
                if state.key == "fix" and isinstance(run_or_error, testrun.Run) and run_or_error.worker_ok:
                    fix_seconds[state.bugs[0].id] = run_or_error.seconds
        if visible_runs:
            on_run(done, len(states), "charging visible failures")
            checks, upstream_failures = _judge_visible(ws, visible_runs, pristine, scratch)
            for bug_id, check in checks.items():
                reports[bug_id].checks["visible"] = check
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if record:
        for bug in bugs:
            if reports[bug.id].ok and bug.id in fix_seconds:
                records.write(kit, bug, fix_seconds[bug.id])
    return Report(list(reports.values()), time.monotonic() - start, tests_run, len(states), upstream_failures)


def _pristine_tree(ws: Workspace, project: upstream.Project, bugs: list[Bug], scratch: Path) -> Path:
    tree = scratch / f"{project.name}-pristine"
    upstream.extract(project, upstream.fetch(project, cache_dir()), tree)
    inject.install_hidden_tests(tree, project, bugs)
    # compiled once here, the copies share the bytecode through their hard links
    proc.run([ws.python, "-m", "compileall", "-q", "-j", "0", tree / project.package], timeout=600)
    return tree


def _run_state(ws: Workspace, state: _State, pristine: Path, scratch: Path) -> testrun.Run | str:
    """The state's test run, or why its tree could not be built."""
    tree = pristine
    if state.patches:
        tree = scratch / state.name
        upstream.copy_tree(pristine, tree)
        missing = [p for p in state.patches if not p.is_file()]
        if missing:
            return f"{missing[0]} is missing"
        try:
            inject.apply_patches(tree, list(state.patches))
        except DebuglabError as exc:
            return str(exc)
    if state.module and not _module_file(tree, state.module).is_file():
        return f"visible module {state.module} does not exist ({_module_file(tree, state.module)} is missing)"
    return testrun.run_tests(ws.python, tree, state.ids, work_dir=scratch / "runs", name=state.name,
                             timeout=1800 if state.module else 900)


def _absent(outcome: testrun.Outcome) -> bool:
    """The worker could not find the id at all: not a failing test, no test."""
    return outcome.status == "fail" and outcome.details.startswith(("no such test in ", "no importable module"))


def _module_file(tree: Path, module: str) -> Path:
    path = tree.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _judge_visible(ws: Workspace, runs: list, pristine: dict[str, Path],
                   scratch: Path) -> tuple[dict[str, Check], tuple[str, ...]]:
    """Each tier 2/3 bug's visible check (its modules' counts, and the failures charged to
    it), and the visible tests that fail on pristine too.

    A failure on the tree with every tier 2/3 bug planted is run again on pristine (upstream's
    own failures are not the bug's) and, when several bugs list the module, on each of those
    bugs' own injected tree (left by its "injected" state) to find whose it is."""
    ran: dict[str, int] = {}
    problems: dict[str, list[str]] = {}
    charged: dict[str, list[str]] = {}
    upstream_failures: set[str] = set()
    for state, run in runs:
        for bug in state.bugs:
            problems.setdefault(bug.id, [])
            charged.setdefault(bug.id, [])
            ran.setdefault(bug.id, 0)
        if isinstance(run, str):
            for bug in state.bugs:
                problems[bug.id].append(run)
            continue
        if not run.worker_ok or not run.reported:
            for bug in state.bugs:
                problems[bug.id].append(f"{state.module}: the test worker exited with {run.returncode} and "
                                        f"reported {len(run.reported)} test(s) (log: {run.log})")
            continue
        for bug in state.bugs:
            ran[bug.id] += len(run.reported)
        failed = sorted(i for i, o in run.reported.items() if o.status not in NOT_FAILED)
        if not failed:
            continue
        upstream_run = testrun.run_tests(ws.python, pristine[state.project.name], failed,
                                         work_dir=scratch / "runs", name=f"{state.name}-pristine")
        upstream_failures.update(i for i in failed if upstream_run.outcomes[i].status not in NOT_FAILED)
        failed = [i for i in failed if upstream_run.outcomes[i].status in NOT_FAILED]
        if not failed:
            continue
        owners = {}
        if len(state.bugs) > 1:
            for bug in state.bugs:
                alone = scratch / f"injected-{bug.id}"
                if alone.is_dir():
                    again = testrun.run_tests(ws.python, alone, failed, work_dir=scratch / "runs",
                                              name=f"{state.name}-{bug.id}")
                    owners[bug.id] = [i for i in failed if again.outcomes[i].status not in NOT_FAILED]
        for bug in state.bugs:
            mine = owners.get(bug.id, failed) if any(owners.values()) else failed
            charged[bug.id].extend(mine)
    checks = {}
    for bug_id, bug_problems in problems.items():
        failures = charged[bug_id]
        if failures:
            shown = ", ".join(failures[:SHOWN]) + (f" and {len(failures) - SHOWN} more" if len(failures) > SHOWN else "")
            bug_problems.append(f"{len(failures)} visible test(s) fail with the bug planted (tiers 2 and 3 must "
                                f"slip past nova's own tests): {shown}")
        summary = f"{ran[bug_id]}" + (f", {len(failures)} fail" if failures else "")
        checks[bug_id] = Check(not bug_problems, tuple(bug_problems), summary)
    return checks, tuple(sorted(upstream_failures))


def _judge(state: _State, bug: Bug, run: testrun.Run | str) -> Check:
    if isinstance(run, str):
        return Check(False, (run,))
    problems = []
    if not run.worker_ok:
        problems.append(f"the test worker exited with {run.returncode} (log: {run.log})")
    if state.key == "wrong":
        if all(run.outcomes[i].passed for i in bug.fail_to_pass):
            problems.append("the wrong fix passes every fail_to_pass test: the hidden tests can be gamed")
        return Check(not problems, tuple(problems))
    bug_fails = state.key in ("injected", "together")
    for label, ids, want_pass in (
        ("fail_to_pass", bug.fail_to_pass, not bug_fails),
        ("pass_to_pass", bug.pass_to_pass, True),
    ):
        absent = [i for i in ids if _absent(run.outcomes[i])]
        if absent:
            problems.append(f"{len(absent)} {label} test id(s) do not exist in this tree (a typo, or a test the "
                            f"patch renamed): {', '.join(absent[:SHOWN])}")
        wrong = [i for i in ids if run.outcomes[i].passed != want_pass and i not in absent]
        if wrong:
            shown = ", ".join(f"{i} ({run.outcomes[i].status})" for i in wrong[:SHOWN])
            more = f" and {len(wrong) - SHOWN} more" if len(wrong) > SHOWN else ""
            expected = "pass" if want_pass else "fail"
            problems.append(f"{len(wrong)} {label} test(s) should {expected}: {shown}{more}")
    return Check(not problems, tuple(problems))
