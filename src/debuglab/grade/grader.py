"""Grading submissions, step by step:

1. the submission's diff (checkout vs its baseline commit, or a .patch file);
2. per bug, only the hunks in its scope (everything else listed as not applied);
3. per touched bug, a fresh grading copy: the injected baseline + those hunks, every test
   file from pristine upstream + the hidden tests + the runner canary;
4. a bug whose scope was not touched is not-fixed at once, nothing runs;
5. the bug's test ids (and the canary) run in a sandboxed child of the session's fork
   server, which imported nova once (what no graded scope reaches) and serves every
   bug of every submission;
6. every expected id must report success in the subunit stream, the child must exit 0
   and its stream pass the audit (markers, nonce, sequence, integrity);
7. a verdict per bug.

Every (submission, bug) run of a class goes into one pool, so all cores stay busy.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from debuglab.catalog.model import Bug, Catalog
from debuglab.core import forkserver
from debuglab.core.errors import DebuglabError, ForkServerError
from debuglab.core.kit import Kit, cache_dir
from debuglab.grade import scope, submission, verdict
from debuglab.grade.copy import Trees, _safe, canary_ids
from debuglab.grade.errors import ApplyError, GradeError, SubmissionError
from debuglab.grade.sandbox import Feature, Limits, Sandbox
from debuglab.grade.submission import Submission
from debuglab.lab import upstream

OnDone = Callable[[str, str, verdict.BugVerdict], None]  # student, bug id, verdict


@dataclass(frozen=True)
class Options:
    limits: Limits = Limits()
    jobs: int | None = None  # test workers at once (default: all cores)
    keep: bool = False  # keep the grading copies (for an instructor's inspection)
    log_dir: Path | None = None  # where an error's log is kept (default: a folder of the session in the cache)
    only: dict[str, tuple[str, ...]] | None = None  # student -> the bugs to grade (a retry); others skipped


LOG_TAIL = 2 << 20  # bytes of a worker's output kept in an error's log


class ErrorLogs:
    """An error's log, kept after the session (its grading copies and run folders are
    removed): what went wrong, then the end of the worker's output. Made only for errors."""

    def __init__(self, folder: Path | None):
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        self.folder = Path(folder) if folder else cache_dir() / "grade-logs" / f"{stamp}-{os.getpid()}"

    def path(self, student: str, bug_id: str) -> str:
        return str(self.folder / f"{_safe(student)}--{bug_id}.log")

    def write(self, v: verdict.BugVerdict, student: str, *outputs: Path, note: str = "") -> None:
        if not v.log:
            return
        path = Path(v.log)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [f"debuglab grade: {student}, {v.bug_id}: error\n", f"why: {v.reason}\n"]
        if v.files:
            parts.append(f"graded files: {', '.join(v.files)}\n")
        if note:
            parts.append(note.rstrip("\n") + "\n")
        for output in outputs:
            try:
                with open(output, "rb") as fh:
                    size = fh.seek(0, os.SEEK_END)
                    fh.seek(max(0, size - LOG_TAIL))
                    text = fh.read().decode("utf-8", errors="replace")
            except OSError:
                continue
            cut = f" (its last {LOG_TAIL >> 20} MB)" if size > LOG_TAIL else ""
            parts.append(f"\n----- {output.name}{cut} -----\n{text}")
        path.write_text("".join(parts))


@dataclass(frozen=True)
class BugRun:
    """One bug of one submission to run: its in-scope change, and the baseline it applies
    to (the bugs planted in the submission's lab for that project)."""

    bug: Bug
    changes: scope.BugChanges
    lab_bugs: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    """Grading one submission: the verdicts decided without running anything (untouched,
    rejected, an error of the submission), the bugs to run, the hunks not applied."""

    submission: Submission
    bugs: tuple[Bug, ...]
    decided: dict[str, verdict.BugVerdict]
    runs: tuple[BugRun, ...] = ()
    not_applied: tuple = ()


@dataclass(frozen=True)
class Session:
    """What every run of one grading session shares."""

    trees: Trees
    servers: "Servers"
    sandbox: Sandbox
    options: Options
    logs: ErrorLogs


def _plan(sub: Submission, bugs: list[Bug], catalog_bugs: list[Bug], packages: dict[str, str],
          logs: ErrorLogs) -> Plan:
    """What grading `sub` over `bugs` takes. Each bug is graded against the submission's
    change to its own project (a lab's python-novaclient checkout, or a patch's
    novaclient/ files)."""
    decided: dict[str, verdict.BugVerdict] = {}
    if sub.problem:
        return Plan(sub, tuple(bugs), {b.id: verdict.error(b, sub.problem, log=logs.path(sub.student, b.id))
                                       for b in bugs})
    try:
        parts = submission.parts(sub, packages)
    except SubmissionError as exc:
        return Plan(sub, tuple(bugs), {b.id: verdict.rejected(b, [str(exc)]) for b in bugs})
    todo, not_applied = [], []
    per_project: dict[str, tuple[scope.Scoped | None, set[str], str | None]] = {}
    for name, part in parts.items():
        lab_bugs = (set(part.lab_bugs) if part.lab_bugs is not None
                    else {b.id for b in catalog_bugs if b.project == name})
        try:
            scoped = scope.split(scope.parse(part.patch), [b for b in bugs if b.project == name])
        except SubmissionError as exc:
            per_project[name] = (None, lab_bugs, str(exc))
            continue
        per_project[name] = (scoped, lab_bugs, None)
        not_applied += scoped.not_applied
    for bug in bugs:
        scoped, lab_bugs, problem = per_project.get(bug.project, (None, set(), None))
        if bug.id not in lab_bugs:
            decided[bug.id] = verdict.error(bug, f"this bug is not planted in the submission's {bug.project} baseline",
                                            log=logs.path(sub.student, bug.id))
            continue
        if scoped is None:
            decided[bug.id] = verdict.rejected(bug, [problem or "no change to this bug's project"])
            continue
        mine = scoped.per_bug[bug.id]
        if mine.rejected:
            decided[bug.id] = verdict.rejected(bug, mine.rejected, mine.files)
        elif not mine.changes:
            decided[bug.id] = verdict.untouched(bug)
        else:
            todo.append(BugRun(bug, mine, tuple(sorted(lab_bugs))))
    return Plan(sub, tuple(bugs), decided, tuple(todo), tuple(not_applied))


def _test_module(test_id: str) -> str:
    """The module of a test id (module.Class.method, maybe with a scenario suffix)."""
    return test_id.split("(")[0].rsplit(".", 2)[0]


def module_name(path: str) -> str | None:
    """nova/compute/api.py → nova.compute.api; None for a file that is not Python."""
    if not path.endswith(".py"):
        return None
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or None


class Servers:
    """One fork server per baseline (project and planted bugs) in a grading session,
    started on first use: it imports, once, every baseline module that no graded bug's
    scope reaches (the scope's modules are blocked while it does), and forks a
    sandboxed child per (submission, bug)."""

    def __init__(self, trees: Trees, sandbox: Sandbox, bugs: list[Bug]):
        self.trees, self.sandbox, self.bugs = trees, sandbox, bugs
        self._servers: dict[tuple[str, tuple[str, ...]], forkserver.Server | DebuglabError] = {}
        self._lock = threading.Lock()

    def get(self, project: str, lab_bugs: tuple[str, ...]) -> forkserver.Server:
        key = (project, tuple(sorted(lab_bugs)))
        with self._lock:
            if key not in self._servers:
                base = self.trees.baseline(project, lab_bugs)
                mine = [b for b in self.bugs if b.project == project]
                canary = canary_ids(self.trees.projects[project])
                modules = list(dict.fromkeys(_test_module(i) for b in mine for i in (*b.test_ids, *canary)))
                work = self.trees.run_dir(f"server-{project}")
                blocked = sorted({m for b in mine for path in b.scope if (m := module_name(path))})
                plan = {"modules": modules, "blocked": blocked,
                        "rebase": self.trees.readable_stdlib() if Feature.OWN_UID in self.sandbox.features(
                            self.trees.python) else {}}
                launch = self.sandbox.launch(self.trees.python)
                try:
                    self._servers[key] = forkserver.Server(
                        self.trees.python, base, plan, work, wrapper=launch.wrapper,
                        python_args=launch.python_args, worker_args=launch.worker_args)
                except ForkServerError as exc:
                    self._servers[key] = exc
            server = self._servers[key]
            if isinstance(server, DebuglabError):
                raise server
            return server

    def close(self) -> None:
        for server in self._servers.values():
            if isinstance(server, forkserver.Server):
                server.close()


def _run_bug(session: Session, sub: Submission, planned: BugRun) -> verdict.BugVerdict:
    """One bug's tests on the submission's change, in a sandboxed child of its baseline's
    fork server; any trouble of the grader's is an error verdict with its log."""
    trees, servers, sandbox, options, logs = (session.trees, session.servers, session.sandbox, session.options,
                                              session.logs)
    bug, mine, lab_bugs = planned.bug, planned.changes, planned.lab_bugs
    label = f"{sub.student}-{bug.id}"
    log = logs.path(sub.student, bug.id)
    start = time.monotonic()
    try:
        tree = trees.copy(bug.project, lab_bugs, mine.patch, label)
    except ApplyError as exc:
        return verdict.rejected(bug, [f"the change does not apply to the lab's baseline: {exc}"], mine.files)
    canary = canary_ids(trees.projects[bug.project])
    deadline = bug.deadline(options.limits.timeout)  # a hang costs its own bug's time, not 600 s
    claim = server = None
    lost = False  # the server did not answer: it may still end this job's uid later
    try:
        server = servers.get(bug.project, lab_bugs)
        claim = sandbox.claim(trees.python)
        job = forkserver.Job(tree, [*bug.test_ids, *canary], trees.run_dir(label), deadline,
                          uid=claim.uid, cgroup=claim.cgroup, nproc=claim.nproc, student_files=mine.files)
        # the server ends the job at its own deadline; this one only guards against a lost server
        run = server.submit(job).result(timeout=deadline + 120)
    except (DebuglabError, FutureTimeout, OSError) as exc:
        lost = isinstance(exc, FutureTimeout)
        v = verdict.error(bug, f"the test worker could not run: {exc or type(exc).__name__}", files=mine.files,
                          seconds=time.monotonic() - start, log=log)
        logs.write(v, sub.student, *([server.log] if server is not None else []))
        return v
    finally:
        if claim is not None:
            claim.release(keep_slot=lost)
    result = verdict.judge(bug, run, canary, mine.files, deadline, log=log)
    if result.verdict == verdict.ERROR:
        logs.write(result, sub.student, run.log, server.log,
                   note=f"sandbox: {', '.join(sandbox.features(trees.python))}; uid {claim.uid}; "
                        f"deadline {deadline:.0f} s; worker exit code {run.returncode}")
    if not options.keep:
        trees.discard(tree)
    return result


def grade_many(
    submissions: list[Submission],
    bug_ids: list[str] | None,
    python: Path,
    *,
    kit: Kit | None = None,
    options: Options = Options(),
    on_done: OnDone = lambda student, bug_id, v: None,
    on_planned: Callable[[int], None] = lambda total: None,
) -> list[verdict.Grade]:
    """Grade every submission over the selected bugs (all for None/[])."""
    kit = kit or Kit.default()
    python = Path(python)
    if not python.exists():
        raise GradeError(f"{python} is missing: the grader runs nova's tests with a lab's venv "
                         "(build one with `debuglab lab create`)")
    catalog = Catalog.load(kit.bugs_dir)
    bugs = catalog.select(bug_ids or [])
    catalog_bugs = list(catalog.bugs.values())
    packages = {name: project.package for name, project in upstream.load_lock(kit.upstream_lock).items()}
    sandbox = Sandbox(options.limits)
    features = sandbox.features(python)
    started = {s.student: time.monotonic() for s in submissions}
    logs = ErrorLogs(options.log_dir)
    plans = []
    for sub in submissions:
        mine = bugs
        if options.only is not None:  # a retry: only the bugs asked for, of the students asked for
            wanted = set(options.only.get(sub.student, ()))
            mine = [b for b in bugs if b.id in wanted]
            if not mine:
                continue
        plans.append(_plan(sub, mine, catalog_bugs, packages, logs))
    on_planned(sum(len(plan.runs) for plan in plans))
    for plan in plans:
        for bug_id, v in plan.decided.items():
            if v.verdict == verdict.ERROR:
                logs.write(v, plan.submission.student)
            on_done(plan.submission.student, bug_id, v)
    with Trees(python, catalog_bugs, kit, hard_links=Feature.OWN_UID in features) as trees:
        session = Session(trees, Servers(trees, sandbox, bugs), sandbox, options, logs)
        try:
            ran = _run_all(session, plans, on_done)
        finally:
            session.servers.close()
    grades = []
    for n, plan in enumerate(plans):
        sub = plan.submission
        verdicts = tuple(plan.decided.get(b.id) or ran[(n, b.id)] for b in plan.bugs)
        grades.append(verdict.Grade(
            sub.student, str(sub.source), verdicts, plan.not_applied,
            seconds=time.monotonic() - started[sub.student], sandbox=features, problem=sub.problem,
        ))
    return grades


def _run_all(session: Session, plans: list[Plan], on_done: OnDone) -> dict[tuple[int, str], verdict.BugVerdict]:
    """Every (submission, bug) run of the session, `options.jobs` at a time, by (the plan's
    index, bug id): each one is a child of the fork server with its own deadline, so a
    hang in one bug's tests holds one slot until that deadline and never delays the
    others beyond it."""
    ran: dict[tuple[int, str], verdict.BugVerdict] = {}
    if not any(plan.runs for plan in plans):
        return ran
    with ThreadPoolExecutor(max_workers=session.options.jobs or os.cpu_count() or 2) as pool:
        futures = {(n, planned.bug.id): (planned.bug, pool.submit(_run_bug, session, plan.submission, planned))
                   for n, plan in enumerate(plans) for planned in plan.runs}
        for (n, bug_id), (bug, future) in futures.items():
            student = plans[n].submission.student
            try:
                v = future.result()
            except DebuglabError as exc:  # the grader's own trouble, not the student's
                v = verdict.error(bug, f"the grader failed: {exc}", log=session.logs.path(student, bug_id))
                session.logs.write(v, student)
            ran[(n, bug_id)] = v
            on_done(student, bug_id, v)
    return ran


def grade(submission: Submission, bug_ids: list[str] | None, python: Path, **kwargs) -> verdict.Grade:
    return grade_many([submission], bug_ids, python, **kwargs)[0]
