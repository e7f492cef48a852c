"""Each lab on a machine owns its ports: the cloud's five services, remote-pdb's range for
breakpoint(), debugpy's, PyCharm's debug server and JupyterLab's.

A lab gets them at `lab create` and keeps them in lab.toml; a machine-wide registry
(`<cache>/labs.json`, under a lock) remembers which lab holds which, so that two labs on
one shared machine never share a port, and a message can name the lab that holds one.
The first lab gets DevStack's well-known ports; each further lab the same block moved up
by a multiple of 100 (lab 2: Keystone 5100, nova 8874, remote-pdb 4544-4553, JupyterLab 8988).
"""

from __future__ import annotations

import fcntl
import json
from contextlib import contextmanager
from pathlib import Path

from debuglab.core.files import write_atomic
from debuglab.core.kit import cache_dir
from debuglab.core.processes import port_free

DEFAULTS = {"keystone": 5000, "nova": 8774, "placement": 8778, "image": 9292, "network": 9696,
            "remote-pdb": 4444, "debugpy": 5679, "pycharm": 5678, "jupyterlab": 8888}
PDB_RANGE = 10  # breakpoint() sessions at once: remote-pdb's port and the nine above it
STEP = 100
LAB_TOML = "lab.toml"


def _used(ports: dict[str, int]) -> set[int]:
    out = set(ports.values())
    out.update(range(ports["remote-pdb"], ports["remote-pdb"] + PDB_RANGE))
    return out


def registry_path() -> Path:
    return cache_dir() / "labs.json"


@contextmanager
def _registry():
    """The registry, pruned of labs that are gone, locked while the caller changes it."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            labs = json.loads(path.read_text())
        except (OSError, ValueError):
            labs = {}
        labs = {root: ports for root, ports in labs.items() if (Path(root) / LAB_TOML).is_file()}
        yield labs
        write_atomic(path, json.dumps(labs, indent=1, sort_keys=True) + "\n")


def allocate(root: Path, keep: dict[str, int] | None = None) -> dict[str, int]:
    """The ports of the lab at `root`: `keep` (a rebuilt lab keeps its own), else the
    first block no other lab holds and nothing listens on."""
    root_key = str(Path(root).absolute())
    with _registry() as labs:
        others = set().union(*(_used(p) for r, p in labs.items() if r != root_key)) if labs else set()
        if keep and not (_used(keep) & others):
            labs[root_key] = dict(keep)
            return dict(keep)
        for k in range(0, 200):  # the last block stays below the kernel's ephemeral ports
            ports = {name: port + k * STEP for name, port in DEFAULTS.items()}
            wanted = _used(ports)
            if wanted & others or max(wanted) > 65535:
                continue
            if all(port_free(p) for p in wanted):
                labs[root_key] = ports
                return ports
        raise RuntimeError("no free block of ports for a lab on this machine (200 tried)")


def registered() -> list[str]:
    """The folders of this machine's labs."""
    with _registry() as labs:
        return sorted(labs)


def holder(port: int) -> str | None:
    """The lab (its folder) that owns `port`, if any."""
    with _registry() as labs:
        for root, ports in labs.items():
            if port in _used(ports):
                return root
    return None


def of(root: Path) -> dict[str, int]:
    """The ports lab.toml records for the lab at `root` (DevStack's defaults for a lab made
    before labs owned their ports)."""
    import tomllib

    try:
        recorded = tomllib.loads((Path(root) / LAB_TOML).read_text()).get("ports", {})
    except (OSError, ValueError):
        recorded = {}
    return {**DEFAULTS, **{k: int(v) for k, v in recorded.items() if k in DEFAULTS}}
