"""`debuglab reset`: a student's checkout back to the baseline (or only the files of one
bug's scope), after their work is saved as a patch on the host and copied here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from debuglab.catalog.model import Catalog
from debuglab.core.kit import Kit
from debuglab.provision import devstack, hosts
from debuglab.provision.collect import location
from debuglab.provision.inventory import Host, Inventory


@dataclass(frozen=True)
class ResetResult:
    host: Host
    project: str
    changed: bool  # False: there was nothing to reset
    saved_remote: str | None  # the patch on the host
    saved_local: Path | None  # its copy on this machine
    restarted: tuple[str, ...]


def reset(inv: Inventory, key: str, *, bug_id: str | None = None, saved_dir: Path = Path("saved-work"),
          kit: Kit | None = None, accept_new_host_keys: bool = False) -> ResetResult:
    host = inv.find(key)
    project, paths = "nova", None
    if bug_id is not None:
        bug = Catalog.load((kit or Kit.default()).bugs_dir).select([bug_id])[0]
        project, paths = bug.project, list(bug.scope)
    conn = hosts.connection(host, inv, accept_new=accept_new_host_keys)
    try:
        answer = hosts.agent(conn, "reset", {**location(host, inv), "project": project, "paths": paths}, "reset")
        local = None
        if answer["changed"]:
            folder = Path(saved_dir) / host.student
            folder.mkdir(parents=True, exist_ok=True)
            local = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{project}-before-reset.patch"
            n = 1
            while local.exists():
                n += 1
                local = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{project}-before-reset-{n}.patch"
            local.write_text(answer["patch"])
        restarted: tuple[str, ...] = ()
        if answer["changed"] and host.profile == "devstack":
            restarted = tuple(u for u, _ in inv.devstack.services)
            devstack.restart(conn, inv.devstack, list(restarted))
        return ResetResult(host, project, answer["changed"], answer["saved_work"], local, restarted)
    except Exception as exc:
        raise hosts.as_host_error(host, exc) from exc
    finally:
        conn.close()
