"""`debuglab bugs verify --live`: every symptom proven on a running mini-cloud.

A scratch lab is built with the whole selection planted (from the cache), its cloud
started on free ports, and each bug's reproduce script must show its bug there. Then,
one bug at a time, only that bug's reference fix is applied (the others stay planted),
the cloud restarted, and the script must find the cloud right; the fix is taken out
again before the next bug. A script that passes there cannot depend on what another
planted bug corrupts. The scratch lab and its cloud are gone afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from debuglab import inject, reproduce, workspace
from debuglab.catalog import Bug, Catalog
from debuglab.cloud import config, supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.errors import DebuglabError
from debuglab.kit import Kit
from debuglab.processes import free_ports
from debuglab.verify import solution

Step = Callable[[str], None]


@dataclass(frozen=True)
class LiveResult:
    bug_id: str
    planted: reproduce.Reproduction  # with every bug planted: must show the bug
    fixed: reproduce.Reproduction | None  # with its reference fix: must behave right
    problem: str = ""  # why `fixed` could not be tried

    @property
    def ok(self) -> bool:
        return (self.planted.bug_seen is True and self.fixed is not None
                and self.fixed.bug_seen is False and not self.problem)


@dataclass(frozen=True)
class LiveReport:
    results: list[LiveResult]
    seconds: float
    start_seconds: float  # the cloud's first start with the whole selection planted
    memory_mib: float  # the cloud's resident memory after every planted script ran

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def verify_live(bug_ids: list[str], *, kit: Kit | None = None, scratch_parent: Path | None = None,
                on_step: Step = lambda text: None) -> LiveReport:
    kit = kit or Kit.default()
    bugs = Catalog.load(kit.bugs_dir, bug_ids).select(bug_ids)
    for bug in bugs:  # every script and fix exists before minutes are spent on a cloud
        reproduce.script(bug, kit)
        if not solution(kit, bug, "fix").is_file():
            raise DebuglabError(f"bug '{bug.id}' has no reference fix ({solution(kit, bug, 'fix')})")
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix=".verify-live-", dir=scratch_parent))
    ws = None
    try:
        on_step(f"building a lab with {len(bugs)} bug(s) planted")
        ws = workspace.create(scratch / "lab", [b.id for b in bugs], kit=kit)
        on_step("starting its cloud on free ports")
        t0 = time.monotonic()
        supervisor.start(ws, ports=free_ports(list(config.DEFAULT_PORTS)))
        start_seconds = time.monotonic() - t0
        planted = {}
        for n, bug in enumerate(bugs, 1):
            on_step(f"[{n}/{len(bugs)}] {bug.id}: the script must show the bug")
            planted[bug.id] = _run_isolated(ws, kit, bug)
        memory = supervisor.memory_mib(ws)
        results = []
        for n, bug in enumerate(bugs, 1):
            on_step(f"[{n}/{len(bugs)}] {bug.id}: with its reference fix, the script must find the cloud right")
            results.append(_with_fix(ws, kit, bug, planted[bug.id]))
        return LiveReport(results, time.monotonic() - start, start_seconds, memory)
    finally:
        if ws is not None:
            supervisor.stop(ws)
        shutil.rmtree(scratch, ignore_errors=True)


def _with_fix(ws: workspace.Workspace, kit: Kit, bug: Bug, planted: reproduce.Reproduction) -> LiveResult:
    checkout = ws.checkout(bug.project)
    fix = solution(kit, bug, "fix")
    try:
        inject.apply_patches(checkout, [fix])
    except DebuglabError as exc:
        return LiveResult(bug.id, planted, None, f"the reference fix does not apply: {exc}")
    try:
        supervisor.restart(ws)
        fixed = _run_isolated(ws, kit, bug, restarted=True)
    finally:
        inject.apply_patches(checkout, [fix], reverse=True)
    return LiveResult(bug.id, planted, fixed)


def _run_isolated(ws: workspace.Workspace, kit: Kit, bug: Bug, restarted: bool = False) -> reproduce.Reproduction:
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
