"""The sandbox's machine-wide claims: every job's uid and pids cgroup are its
alone on the machine, whichever grader process claimed them, and releasing a claim ends
that job's processes and nothing else. Real processes, real uids (as root), the real
registry (which other graders on the machine share, as in production)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from debuglab.grade import sandbox
from debuglab.grade.sandbox import PROBE_UID, UID_BASE, UID_SPAN, Sandbox

PYTHON = Path(sys.executable)
SRC = str(Path(sandbox.__file__).resolve().parents[2])
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}

needs_own_uid = pytest.mark.skipif("own-uid" not in Sandbox().features(PYTHON),
                                   reason="not root, or no setpriv: jobs get no uid of their own here")


def _login_defs(key: str, default: int) -> int:
    try:
        for line in Path("/etc/login.defs").read_text().splitlines():
            words = line.split()
            if len(words) == 2 and words[0] == key:
                return int(words[1])
    except (OSError, ValueError):
        pass
    return default


def test_the_uid_range_is_clear_of_systemd_and_of_the_users():
    """systemd's DynamicUser range is 61184-65519, systemd-homed's 60001-60513 (the old
    61000+2000 overlapped the first); login.defs' regular users end at UID_MAX and useradd
    fills that range from the bottom: the jobs take its top, and skip any uid it knows."""
    top = UID_BASE + UID_SPAN  # the probe's uid, the last one used
    assert top < 60001 and top <= max(_login_defs("UID_MAX", 60000), 60000)
    assert not set(range(UID_BASE, top + 1)) & set(range(60001, 65536))
    assert UID_BASE > _login_defs("UID_MIN", 1000) + 50000  # far above any uid useradd gives out first
    assert PROBE_UID == top


def _sleep_as(uid: int) -> subprocess.Popen:
    return subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", "sleep", "300"])


def _gone(p: subprocess.Popen, timeout: float = 10) -> bool:
    try:
        p.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


HOLDER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from debuglab.grade.sandbox import Sandbox
    sandbox = Sandbox()
    claims = [sandbox.claim(Path(sys.executable)) for _ in range(int(sys.argv[1]))]
    print(json.dumps([[c.uid, str(c.cgroup)] for c in claims]), flush=True)
    sys.stdin.readline()
    for c in claims:
        c.release()
""")


@needs_own_uid
def test_claims_are_unique_across_grader_processes():
    """Four processes claim five jobs each, at once: twenty different uids and cgroups."""
    holders = [subprocess.Popen([sys.executable, "-c", HOLDER, "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=ENV) for _ in range(4)]
    try:
        got = [json.loads(h.stdout.readline()) for h in holders]
    finally:
        for h in holders:
            h.communicate("\n", timeout=60)
    uids = [uid for claims in got for uid, _ in claims]
    cgroups = [cg for claims in got for _, cg in claims]
    assert len(uids) == 20 and len(set(uids)) == 20, got
    assert all(UID_BASE <= uid < UID_BASE + UID_SPAN for uid in uids)
    if "pids-cgroup" in Sandbox().features(PYTHON):
        assert len(set(cgroups)) == 20 and not any(Path(cg).exists() for cg in cgroups), cgroups
    assert all(h.returncode == 0 for h in holders)


@needs_own_uid
def test_release_ends_its_own_job_only_and_only_once():
    """The old release() killed every process of a uid that other graders' jobs had too.
    Now: a's release kills a's job and not b's; a second release of a (its uid maybe
    someone else's by then) touches nothing."""
    a, b = Sandbox().claim(PYTHON), Sandbox().claim(PYTHON)
    job_a, job_b = _sleep_as(a.uid), _sleep_as(b.uid)
    try:
        time.sleep(0.3)
        a.release()
        assert _gone(job_a) and job_b.poll() is None
        later = _sleep_as(a.uid)  # a job that got a's uid after a was released
        time.sleep(0.3)
        a.release()
        assert later.poll() is None
        later.kill()
        later.wait()
        b.release()
        assert _gone(job_b)
    finally:
        for p in (job_a, job_b):
            if p.poll() is None:
                p.kill()
                p.wait()


DYING = textwrap.dedent("""
    import os, subprocess, sys
    from pathlib import Path
    from debuglab.grade.sandbox import Sandbox
    claim = Sandbox().claim(Path(sys.executable))
    # a leftover of the job: a process of its uid that outlives the grader
    subprocess.Popen(["setpriv", f"--reuid={claim.uid}", f"--regid={claim.uid}", "--clear-groups", "--",
                      "sleep", "300"], start_new_session=True)
    print(claim.uid, flush=True)
    sys.stdin.readline()
""")


@needs_own_uid
def test_a_dead_graders_claim_is_reclaimed_and_its_leftovers_ended():
    grader = subprocess.Popen([sys.executable, "-c", DYING], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=ENV)
    uid = int(grader.stdout.readline())
    slot = str(uid - UID_BASE)
    time.sleep(0.3)
    assert sandbox._pids_of(uid)
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    with sandbox._registry() as data:
        assert data["claims"][slot]["pid"] == grader.pid  # still claimed, by a dead grader
    claim = Sandbox().claim(PYTHON)  # any claim reclaims the stale ones
    try:
        with sandbox._registry() as data:
            assert data["claims"].get(slot, {}).get("pid") != grader.pid
        for _ in range(50):
            if not sandbox._pids_of(uid):
                break
            time.sleep(0.1)
        assert not sandbox._pids_of(uid), "the dead grader's job was left running"
    finally:
        claim.release()


@needs_own_uid
def test_a_lost_jobs_slot_stays_claimed_until_its_grader_ends():
    """A job whose fork server stopped answering is ended, but its uid is not handed out
    again while this grader runs (the server might still end that uid's processes)."""
    claim = Sandbox().claim(PYTHON)
    job = _sleep_as(claim.uid)
    try:
        time.sleep(0.3)
        claim.release(keep_slot=True)
        assert _gone(job)
        with sandbox._registry() as data:
            assert data["claims"][str(claim.slot)]["token"] == claim.token
        others = [Sandbox().claim(PYTHON) for _ in range(3)]
        for other in others:
            other.release()
        assert claim.uid not in [o.uid for o in others]
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        sandbox._unregister(claim.slot, claim.token)
