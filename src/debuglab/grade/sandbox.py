"""Where a student's code runs: the test worker under a wall-clock timeout, memory,
process-count, file-size and core-dump limits, a scrubbed environment, no network (an
unshared network namespace, where the OS allows one), as an unprivileged user of its
own (when the grader runs as root), and under `python -S`: no sitecustomize, no
usercustomize, and nothing on sys.path but the grading copy, the venv's site-packages
and the standard library (the venv's editable link to a student's checkout is dropped).

Each feature is used where it works and reported in `Sandbox.features`, so a grade says
how it was sandboxed.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from debuglab.core import proc
from debuglab.core.errors import ProcError

UID_BASE = 61000  # each test run gets its own uid from here: its own process count
UID_SPAN = 2000
_uids = itertools.count()
_uid_lock = threading.Lock()


@functools.cache
def _works(*argv: str) -> bool:
    if not shutil.which(argv[0]):
        return False
    try:
        proc.run(list(argv), timeout=20, check=True, inherit_env=False, env={"PATH": os.environ.get("PATH", "")})
        return True
    except ProcError:
        return False


def can_unshare_net() -> bool:
    return _works("unshare", "--net", "--", "true")


def can_drop_privileges(python: Path | None = None) -> bool:
    """Root can run the worker as a uid of its own, if that uid can read the venv."""
    if os.geteuid() != 0:
        return False
    argv = ["setpriv", f"--reuid={UID_BASE + UID_SPAN}", f"--regid={UID_BASE + UID_SPAN}", "--clear-groups", "--"]
    if python is None:
        return _works(*argv, "true")
    check = "import os, sys; sys.exit(not all(os.access(p, os.R_OK | os.X_OK) for p in sys.argv[1:]))"
    return _works(*argv, str(python), "-S", "-c", check, *map(str, site_packages(python)))


PIDS_CGROUP = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids controller, where mounted writable
_cgroups = itertools.count()


@functools.cache
def can_pids_cgroup() -> bool:
    probe = PIDS_CGROUP / f"debuglab-probe-{os.getpid()}"
    try:
        probe.mkdir()
        (probe / "pids.max").write_text("64")
        probe.rmdir()
        return True
    except OSError:
        return False


def can_prlimit() -> bool:
    return _works("prlimit", "--nofile=1024", "--", "true")


@dataclass(frozen=True)
class Limits:
    timeout: float = 600.0  # wall clock per bug, seconds
    memory: int = 4 << 30  # address space per process, bytes
    processes: int = 512  # processes and threads: of the run's own uid, and of its pids cgroup
    file_size: int = 256 << 20  # any one file written (the log included), bytes
    network: bool = False


@dataclass(frozen=True)
class Launch:
    """How the fork server (forkserver.Server) is started: a wrapper (no network, rlimits),
    the interpreter's isolation flags, the worker's site dirs."""

    wrapper: tuple[str, ...]
    python_args: tuple[str, ...]
    worker_args: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    """One job's own uid, pids cgroup and process limit; `release()` after the job."""

    uid: int | None
    cgroup: Path | None
    nproc: int | None

    def release(self) -> None:
        """End whatever the run left behind (a fork loop's children): every process of
        the run's own uid, which nothing else uses, and of its cgroup."""
        for _ in range(20):
            pids = _pids_of(self.uid) if self.uid is not None else []
            if self.cgroup is not None:
                try:
                    pids += [int(p) for p in (self.cgroup / "cgroup.procs").read_text().split()]
                except OSError:
                    pass
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.05)
        if self.cgroup is not None:
            # killed processes leave the cgroup only once they are reaped: wait for that
            for _ in range(100):
                try:
                    self.cgroup.rmdir()
                    return
                except FileNotFoundError:
                    return
                except OSError:
                    try:
                        for pid in (self.cgroup / "cgroup.procs").read_text().split():
                            os.kill(int(pid), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
                    time.sleep(0.1)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


def site_packages(python: Path) -> list[Path]:
    venv = Path(python).parent.parent
    return sorted(venv.glob("lib/python*/site-packages"))


@dataclass(frozen=True)
class Sandbox:
    limits: Limits = Limits()

    @functools.cache
    def features(self, python: Path) -> tuple[str, ...]:
        found = ["scrubbed-env", "python-S", "timeout"]
        if can_prlimit():
            found.append("rlimits")
        if not self.limits.network and can_unshare_net():
            found.append("no-network")
        if can_drop_privileges(python):
            found.append("own-uid")
        if can_pids_cgroup():
            found.append("pids-cgroup")
        return tuple(found)

    def launch(self, python: Path) -> Launch:
        """The fork server runs in the network namespace and under the rlimits of all its
        jobs; it stays root (when the grader is) only to give each job's child a uid of
        its own, and runs nothing of a student's itself."""
        features = self.features(python)
        wrapper: list[str] = []
        if "no-network" in features:
            wrapper += ["unshare", "--net", "--"]
        if "rlimits" in features:
            lim = self.limits
            wrapper += ["prlimit", f"--as={lim.memory}", f"--fsize={lim.file_size}", "--core=0", "--"]
        sites = site_packages(python)
        worker_args: list[str] = []
        for site in sites:
            worker_args += ["--site-packages", str(site)]
        python_args = ("-S", "-E", "-s", "-B") if sites else ("-E", "-s", "-B")
        return Launch(tuple(wrapper), python_args, tuple(worker_args))

    def claim(self, python: Path) -> Claim:
        """A job's uid (own-uid), pids cgroup (pids-cgroup) and process limit (rlimits)."""
        features = self.features(python)
        uid = cgroup = None
        if "own-uid" in features:
            with _uid_lock:
                uid = UID_BASE + next(_uids) % UID_SPAN
        if "pids-cgroup" in features:
            cgroup = PIDS_CGROUP / f"debuglab-{os.getpid()}-{next(_cgroups)}"
            cgroup.mkdir()
            (cgroup / "pids.max").write_text(str(self.limits.processes))
        nproc = self.limits.processes if "rlimits" in features else None
        return Claim(uid, cgroup, nproc)
