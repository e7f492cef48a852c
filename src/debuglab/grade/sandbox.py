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

import fcntl
import functools
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from debuglab.core import proc
from debuglab.core.errors import ProcError
from debuglab.grade.errors import SandboxError

# Each job runs as a uid of its own, unique on the whole machine while the job runs (the
# claim registry below), so that ending a job's leftovers by uid can only ever reach that
# job. The range must belong to no one else:
# - systemd gives DynamicUser= services uids 61184-65519 and systemd-homed users 60001-60513
#   (https://systemd.io/UIDS-GIDS/): the old range, 61000-62999, overlapped DynamicUser, so a
#   job's uid could be a running service's, and a job's cleanup kill that service;
# - login.defs' regular users are UID_MIN..UID_MAX (1000..60000 on Debian and Ubuntu, as
#   here); useradd hands them out from the bottom, so its top is free on any real machine;
# so 58000-59998, the top of the regular range, below every systemd range. A uid that the
# user database knows, or that runs a process no claim accounts for, is skipped anyway.
UID_BASE = 58000
UID_SPAN = 1999  # jobs at once on the machine; UID_BASE + UID_SPAN is the probe's uid
PROBE_UID = UID_BASE + UID_SPAN
REGISTRY = Path("/run/debuglab/sandbox-claims.json")  # root's: tmpfs, so no claim outlives a boot



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
    argv = ["setpriv", f"--reuid={PROBE_UID}", f"--regid={PROBE_UID}", "--clear-groups", "--"]
    if python is None:
        return _works(*argv, "true")
    check = "import os, sys; sys.exit(not all(os.access(p, os.R_OK | os.X_OK) for p in sys.argv[1:]))"
    return _works(*argv, str(python), "-S", "-c", check, *map(str, site_packages(python)))


PIDS_CGROUP = Path("/sys/fs/cgroup/pids")  # cgroup v1's pids controller, where mounted writable


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


class Feature(StrEnum):
    """A protection the sandbox could use on this machine (a grade lists those in force)."""

    SCRUBBED_ENV = "scrubbed-env"  # the worker's environment holds only what the tests need
    PYTHON_S = "python-S"  # no site, no .pth, no usercustomize: only the grading copy and the venv
    TIMEOUT = "timeout"  # a wall-clock deadline per bug
    RLIMITS = "rlimits"  # memory, file size, core dumps, processes (prlimit)
    NO_NETWORK = "no-network"  # an unshared network namespace
    OWN_UID = "own-uid"  # each job as a uid of its own (the grader runs as root)
    PIDS_CGROUP = "pids-cgroup"  # each job's process count in a pids cgroup


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


def registry_path() -> Path:
    """The machine-wide claim registry: root's in /run (the only user who hands out uids);
    another user's (whose jobs only get pids cgroups) in a folder of their own in /tmp."""
    if os.geteuid() == 0:
        return REGISTRY
    return Path(tempfile.gettempdir()) / f"debuglab-sandbox-{os.getuid()}" / REGISTRY.name


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): with its pid, a name no other
    process will have, even once the pid is reused."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data.rsplit(")", 1)[1].split()[19]


def _alive(entry: dict) -> bool:
    """Whether the grader that made a claim still runs (the same process, not its pid reused)."""
    pid, start = entry.get("pid"), entry.get("start")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if start is None:  # no start time was readable: the pid alone
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return _start_time(pid) == start


@contextmanager
def _registry():
    """{"next": slot, "claims": {slot: {"pid", "start", "token"}}}, locked (flock) while the
    caller reads and changes it. As debuglab.lab.port_registry keeps ports, for every grader on the
    machine: a slot is a job's uid (UID_BASE + slot) and pids cgroup."""
    path = registry_path()
    path.parent.mkdir(mode=0o755 if os.geteuid() == 0 else 0o700, parents=True, exist_ok=True)
    st = path.parent.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise SandboxError(f"{path.parent}: not a folder of this user's alone: no claim registry for the sandbox")
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("claims"), dict):
            data = {"next": 0, "claims": {}}
        yield data
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)


def _cgroup_of(slot: int) -> Path:
    return PIDS_CGROUP / f"debuglab-job-{os.geteuid()}-{slot}"


def _in_user_database(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _claim_slot(own_uid: bool, cgroup: bool) -> tuple[int, str]:
    """A slot no live claim on the machine holds, registered as this process's: (slot,
    token). A claim whose grader is gone (its pid dead, or reused by another process) is
    stale: whatever its job left running is ended, and the slot is free again."""
    with _registry() as data:
        claims = data["claims"]
        for key in [k for k, entry in claims.items() if not _alive(entry)]:
            slot = int(key)
            _end(UID_BASE + slot if own_uid else None, _cgroup_of(slot) if cgroup else None)
            del claims[key]
        start = int(data.get("next", 0)) % UID_SPAN
        for n in range(UID_SPAN):
            slot = (start + n) % UID_SPAN  # round the range: a uid is not handed out again at once
            if str(slot) in claims:
                continue
            uid = UID_BASE + slot
            if own_uid and (_in_user_database(uid) or _pids_of(uid)):
                continue  # someone else's uid, or a job's leftovers that would not die
            if cgroup and _cgroup_of(slot).exists():
                try:
                    _cgroup_of(slot).rmdir()  # an empty leftover
                except OSError:
                    continue
            token = secrets.token_hex(8)
            claims[str(slot)] = {"pid": os.getpid(), "start": _start_time(os.getpid()), "token": token}
            data["next"] = slot + 1
            return slot, token
    raise SandboxError(f"no free sandbox uid: all {UID_SPAN} from {UID_BASE} are claimed or in use")


def _owns(slot: int, token: str) -> bool:
    with _registry() as data:
        return data["claims"].get(str(slot), {}).get("token") == token


def _unregister(slot: int, token: str) -> None:
    with _registry() as data:
        if data["claims"].get(str(slot), {}).get("token") == token:
            del data["claims"][str(slot)]


def _end(uid: int | None, cgroup: Path | None) -> None:
    """End every process of `uid` (which a claim gives one job alone) and of `cgroup`,
    then remove the cgroup."""
    for _ in range(20):
        pids = _pids_of(uid) if uid is not None else []
        if cgroup is not None:
            try:
                pids += [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
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
    if cgroup is not None:
        # killed processes leave the cgroup only once they are reaped: wait for that
        for _ in range(100):
            try:
                cgroup.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                try:
                    for pid in (cgroup / "cgroup.procs").read_text().split():
                        os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
                time.sleep(0.1)


@dataclass
class Claim:
    """One job's own uid, pids cgroup and process limit, registered machine-wide as this
    process's until `release()`."""

    uid: int | None
    cgroup: Path | None
    nproc: int | None
    slot: int | None = None
    token: str = ""
    released: bool = field(default=False, compare=False)

    def release(self, keep_slot: bool = False) -> None:
        """End whatever the run left behind (a fork loop's children): every process of the
        run's own uid and of its cgroup, which no other job on the machine has while this
        claim holds them; then give the slot back. Only once, and only while the registry
        still says the slot is this claim's: a released or lost claim touches nothing.

        `keep_slot`: for a job whose fork server stopped answering, which may still end
        the job's uid later: the slot stays this process's until it exits (then a later
        claim finds it stale), so no other job gets the uid meanwhile."""
        if self.released:
            return
        self.released = True
        if self.slot is None:
            return
        if not _owns(self.slot, self.token):
            return
        _end(self.uid, self.cgroup)
        if not keep_slot:
            _unregister(self.slot, self.token)


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
    def features(self, python: Path) -> tuple[Feature, ...]:
        found = [Feature.SCRUBBED_ENV, Feature.PYTHON_S, Feature.TIMEOUT]
        if can_prlimit():
            found.append(Feature.RLIMITS)
        if not self.limits.network and can_unshare_net():
            found.append(Feature.NO_NETWORK)
        if can_drop_privileges(python):
            found.append(Feature.OWN_UID)
        if can_pids_cgroup():
            found.append(Feature.PIDS_CGROUP)
        return tuple(found)

    def launch(self, python: Path) -> Launch:
        """The fork server runs in the network namespace and under the rlimits of all its
        jobs; it stays root (when the grader is) only to give each job's child a uid of
        its own, and runs nothing of a student's itself."""
        features = self.features(python)
        wrapper: list[str] = []
        if Feature.NO_NETWORK in features:
            wrapper += ["unshare", "--net", "--"]
        if Feature.RLIMITS in features:
            lim = self.limits
            wrapper += ["prlimit", f"--as={lim.memory}", f"--fsize={lim.file_size}", "--core=0", "--"]
        sites = site_packages(python)
        worker_args: list[str] = []
        for site in sites:
            worker_args += ["--site-packages", str(site)]
        python_args = ("-S", "-E", "-s", "-B") if sites else ("-E", "-s", "-B")
        return Launch(tuple(wrapper), python_args, tuple(worker_args))

    def claim(self, python: Path) -> Claim:
        """A job's uid (own-uid), pids cgroup (pids-cgroup) and process limit (rlimits); the
        uid and cgroup are the job's alone on the machine (a locked registry that every
        grader shares) until `release()`."""
        features = self.features(python)
        nproc = self.limits.processes if Feature.RLIMITS in features else None
        own_uid, pids_cgroup = Feature.OWN_UID in features, Feature.PIDS_CGROUP in features
        if not own_uid and not pids_cgroup:
            return Claim(None, None, nproc)
        slot, token = _claim_slot(own_uid, pids_cgroup)
        claim = Claim(UID_BASE + slot if own_uid else None, None, nproc, slot, token)
        if pids_cgroup:
            cgroup = _cgroup_of(slot)
            try:
                cgroup.mkdir()
                (cgroup / "pids.max").write_text(str(self.limits.processes))
            except OSError:
                claim.release()
                raise
            claim.cgroup = cgroup
        return claim
