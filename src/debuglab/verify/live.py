"""`debuglab bugs verify --live`: every symptom proven on a running mini-cloud.

Scratch labs are built with the whole selection planted (from the cache), their clouds
started on free ports (two by default, sharing the bugs out), and each bug's reproduce
script must show its bug there. Then,
one bug at a time, only that bug's reference fix is applied (the others stay planted),
the cloud restarted, and the script must find the cloud right; the fix is taken out
again before the next bug. A script that passes there cannot depend on what another
planted bug corrupts. The scratch lab and its cloud are gone afterwards.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from debuglab.catalog.model import Bug, Catalog
from debuglab.cloud import config, supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.core.console import Step
from debuglab.core.errors import DebuglabError
from debuglab.core.kit import Kit
from debuglab.core.processes import free_ports
from debuglab.lab import inject, workspace
from debuglab.verify import reproduce, spoilers
from debuglab.verify.checks import solution


@dataclass(frozen=True)
class LiveResult:
    bug_id: str
    planted: reproduce.Reproduction  # with every bug planted: must show the bug
    fixed: reproduce.Reproduction | None  # with its reference fix: must behave right
    problem: str = ""  # why `fixed` could not be tried
    leaks: tuple[str, ...] = ()  # where the script's output with the bug planted names the cause

    @property
    def ok(self) -> bool:
        return (self.planted.bug_seen is True and self.fixed is not None
                and self.fixed.bug_seen is False and not self.problem and not self.leaks)


@dataclass(frozen=True)
class LiveReport:
    results: list[LiveResult]
    seconds: float
    start_seconds: float  # the cloud's first start with the whole selection planted
    memory_mib: float  # the cloud's resident memory after every planted script ran

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def verify_live(bug_ids: list[str], *, kit: Kit | None = None, clouds: int = 2, scratch_parent: Path | None = None,
                on_step: Step = lambda text: None) -> LiveReport:
    """`clouds` scratch labs (each with the whole selection planted) share the bugs out, so
    that two cores run two clouds' scripts at once."""
    kit = kit or Kit.default()
    bugs = Catalog.load(kit.bugs_dir, bug_ids).select(bug_ids)
    for bug in bugs:  # every script and fix exists before minutes are spent on a cloud
        reproduce.script(bug, kit)
        if not solution(kit, bug, "fix").is_file():
            raise DebuglabError(f"bug '{bug.id}' has no reference fix ({solution(kit, bug, 'fix')})")
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=".verify-live-", dir=scratch_parent))
    groups = [bugs[i::max(1, clouds)] for i in range(max(1, clouds))]
    groups = [g for g in groups if g]
    labs: list[workspace.Workspace] = []
    try:
        on_step(f"building {len(groups)} lab(s) with {len(bugs)} bug(s) planted")
        with ThreadPoolExecutor(len(groups)) as pool:
            labs = list(pool.map(lambda n: workspace.create(scratch / f"lab{n}", [b.id for b in bugs], kit=kit),
                                 range(len(groups))))
        done = itertools.count(1)
        total = 2 * len(bugs)

        def step(text: str) -> None:
            on_step(f"[{next(done)}/{total}] {text}")

        t0 = time.monotonic()
        supervisor.start(labs[0], ports=free_ports(list(config.DEFAULT_PORTS)))
        start_seconds = time.monotonic() - t0
        with ThreadPoolExecutor(len(groups)) as pool:
            runs = list(pool.map(lambda pair: _run_group(pair[0], kit, pair[1], step, started=pair[0] is labs[0]),
                                 zip(labs, groups)))
        by_id = {r.bug_id: r for results, _ in runs for r in results}
        return LiveReport([by_id[b.id] for b in bugs], time.monotonic() - start, start_seconds, runs[0][1])
    finally:
        for ws in labs:
            supervisor.stop(ws)
        shutil.rmtree(scratch, ignore_errors=True)


def _run_group(ws: workspace.Workspace, kit: Kit, bugs: list[Bug], step: Step,
               started: bool) -> tuple[list[LiveResult], float]:
    """One cloud's share: every script with the catalog planted, then each with its fix."""
    if not started:
        supervisor.start(ws, ports=free_ports(list(config.DEFAULT_PORTS)))
    planted = {}
    for bug in bugs:
        step(f"{bug.id}: with every bug planted, the script must show the bug")
        planted[bug.id] = _run_isolated(ws, kit, bug)
    memory = supervisor.memory_mib(ws)
    results = []
    for bug in bugs:
        step(f"{bug.id}: with its reference fix only, the script must find the cloud right")
        results.append(_with_fix(ws, kit, bug, planted[bug.id]))
    return results, memory


def _with_fix(ws: workspace.Workspace, kit: Kit, bug: Bug, planted: reproduce.Reproduction) -> LiveResult:
    checkout = ws.checkout(bug.project)
    fix = solution(kit, bug, "fix")
    try:
        inject.apply_patches(checkout, [fix])
    except DebuglabError as exc:
        return LiveResult(bug.id, planted, None, f"the reference fix does not apply: {exc}")
    try:
        if bug.project == "nova":  # a client fix is loaded by the next command; nova's by a restart
            supervisor.restart(ws)
        fixed = _run_isolated(ws, kit, bug)
    finally:
        inject.apply_patches(checkout, [fix], reverse=True)
    # what the student sees before the fix includes the script's output
    leaks = spoilers.leaks(bug, {"the reproduce script's output": planted.output})
    return LiveResult(bug.id, planted, fixed, leaks=tuple(leaks))


def _run_isolated(ws: workspace.Workspace, kit: Kit, bug: Bug) -> reproduce.Reproduction:
    """The bug's script; nova.conf options it set (local.conf) are put back afterwards, so
    that one bug's configuration (a filter list, a per-host limit) never reaches the next."""
    local_conf = CloudPaths(ws).local_conf
    before = local_conf.read_bytes() if local_conf.is_file() else None
    try:
        return reproduce.run(ws, bug, kit=kit)
    finally:
        after = local_conf.read_bytes() if local_conf.is_file() else None
        if after != before:
            if before is None:
                local_conf.unlink()
            else:
                local_conf.write_bytes(before)
            supervisor.restart(ws)
