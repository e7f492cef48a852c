"""`debuglab collect`: every student's work against their baseline, into a submissions
folder for the autograder: `<dest>/<student>/<project>.patch` and `submission.toml`.

On the host the diff is read through a scratch index (debuglab.lab.gitrepo.work_patch), so
commits, edits and new files are all in it and the student's own index is untouched.
"""

from __future__ import annotations

import datetime
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from debuglab.core.files import write_atomic
from debuglab.provision import hosts
from debuglab.provision.errors import HostError
from debuglab.provision.inventory import Host, Inventory


@dataclass(frozen=True)
class Collected:
    host: Host
    ok: bool
    seconds: float
    folder: Path | None = None
    changed_files: int = 0
    error: str | None = None


def location(host: Host, inv: Inventory) -> dict:
    """How the host-side agent finds the checkouts and their baselines."""
    return {"profile": host.profile, "dir": inv.devstack.stack_dir if host.profile == "devstack" else inv.lab.dir}


def _count_files(patch: str) -> int:
    return sum(1 for line in patch.splitlines() if line.startswith("diff --git "))


def _write_notebooks(folder: Path, notebooks: dict) -> list[str]:
    """The notebooks the student changed, under `folder`; a name from the host that would
    lead outside it is skipped (the host is the student's machine)."""
    written = []
    root = folder.resolve()
    for rel, text in sorted(notebooks.items()):
        target = (folder / rel).resolve()
        if not isinstance(text, str) or root not in target.parents:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(rel)
    return written


def collect_one(host: Host, inv: Inventory, dest: Path, *, accept_new_host_keys: bool = False) -> Collected:
    start = time.monotonic()
    conn = hosts.connection(host, inv, accept_new=accept_new_host_keys)
    try:
        reply = hosts.agent(conn, "collect", location(host, inv), "collecting the work")
        answer = reply["projects"]
        folder = dest / host.student
        folder.mkdir(parents=True, exist_ok=True)
        record = {"student": host.student, "host": host.name, "profile": host.profile,
                  "collected": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "projects": {}}
        files = 0
        for project, entry in answer.items():
            patch_file = folder / f"{project}.patch"
            write_atomic(patch_file, entry["patch"])
            files += _count_files(entry["patch"])
            record["projects"][project] = {"baseline_commit": entry["baseline_commit"], "patch": patch_file.name}
        record["notebooks"] = _write_notebooks(folder / "notebooks", reply.get("notebooks") or {})
        (folder / "submission.toml").write_text(tomli_w.dumps(record))
        return Collected(host, True, time.monotonic() - start, folder, files)
    except HostError as exc:
        return Collected(host, False, time.monotonic() - start, error=exc.reason)
    except Exception as exc:
        return Collected(host, False, time.monotonic() - start, error=hosts.as_host_error(host, exc).reason)
    finally:
        conn.close()


def collect(inv: Inventory, dest: Path, *, parallel: int = 8, accept_new_host_keys: bool = False) -> list[Collected]:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda h: collect_one(h, inv, dest, accept_new_host_keys=accept_new_host_keys),
                             inv.hosts))
