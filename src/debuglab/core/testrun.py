"""One test runner for the whole kit: a list of test ids runs in a worker process of the
lab venv, and the status of each id is read from the subunit v2 stream it writes.

nova's tests do not run under pytest; OpenStack reads results as subunit. The worker
imports nova once for all ids; debuglab.core.forkserver keeps one worker that imported
nova once and forks a child per job (the grader's). An id that never reports success has
not passed: a crash, a hang or an `os._exit(0)` leaves ids missing or in progress, never
passed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from debuglab.core import proc
from debuglab.core._worker import DONE, LOADED
from debuglab.core.errors import ProcError

WORKER = Path(__file__).with_name("_worker.py")
# What nova's tox.ini sets for its unit tests, on the threading backend: the mini-cloud
# runs on it too, and eventlet's patching hangs a subunit writer.
TEST_ENV = {
    "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1",
    "OS_STDOUT_CAPTURE": "1",
    "OS_STDERR_CAPTURE": "1",
    "OS_LOG_CAPTURE": "1",
    "OS_TEST_TIMEOUT": "160",
    "LANGUAGE": "en_US",
    "LC_ALL": "C.UTF-8",
}
# All a worker keeps of the caller's environment: no credentials, no OS_* cloud settings.
KEPT_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "TERM")


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str  # subunit's: success, fail, skip, xfail, uxsuccess, inprogress; or missing
    details: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True)
class Run:
    """The result of running some test ids once in one tree."""

    outcomes: dict[str, Outcome]  # one per requested id
    reported: dict[str, Outcome]  # every id the stream reported (a module's name runs them all)
    returncode: int | None  # the worker's; None when it was killed on timeout
    seconds: float
    log: Path  # the worker's stdout and stderr
    stream: Path | None = None  # the subunit file
    nonce: str = ""  # the one the run's markers must carry

    @property
    def worker_ok(self) -> bool:
        return self.returncode == 0

    def passed(self, test_id: str) -> bool:
        return self.worker_ok and self.outcomes[test_id].passed

    def failing(self, ids: Sequence[str]) -> list[str]:
        return [i for i in ids if not self.passed(i)]


def run_tests(
    python: Path,
    tree: Path,
    ids: Sequence[str],
    *,
    work_dir: Path | None = None,
    name: str = "run",
    timeout: float = 900,
    wrapper: Sequence[str | os.PathLike] = (),
    python_args: Sequence[str] = (),
    worker_args: Sequence[str | os.PathLike] = (),
    env: dict[str, str] | None = None,
    nonce: str = "",
) -> Run:
    """Run `ids` against the code in `tree` with the lab's `python`.

    For a sandbox (the grader's): `wrapper` is a command prefix (e.g. unshare, prlimit,
    setpriv), `python_args` go to the interpreter (e.g. -S), `worker_args` to the worker
    (e.g. --site-packages), and `env` entries are laid over the scrubbed environment."""
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="debuglab-run-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    ids_file, stream, log = (work_dir / f"{name}.{ext}" for ext in ("ids", "subunit", "log"))
    ids_file.write_text("".join(f"{i}\n" for i in ids))
    full_env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    full_env.update(TEST_ENV)
    full_env.update(env or {})
    start = time.monotonic()
    try:
        done = proc.run(
            [*wrapper, python, *python_args, WORKER, "--tree", tree, "--ids", ids_file, "--out", stream,
             "--nonce", nonce, *worker_args],
            cwd=tree, env=full_env, inherit_env=False, timeout=timeout, check=False, output_file=log,
        )
        returncode = done.returncode
    except ProcError:  # timed out: whatever reported before the kill still counts
        returncode = None
    seconds = time.monotonic() - start
    reported = read_stream(stream)
    outcomes = {i: reported.get(i, Outcome(i, "missing")) for i in ids}
    return Run(outcomes, reported, returncode, seconds, log, stream, nonce)


def read_stream(path: Path) -> dict[str, Outcome]:
    """The final status of every test id in a subunit v2 file."""
    from subunit import ByteStreamToStreamResult
    from testtools import StreamToDict

    found: dict[str, Outcome] = {}

    def on_test(test: dict) -> None:
        if test["id"] in MARKERS:
            return  # the worker's own records, not tests (audit_stream reads them)
        details = "".join(
            "".join(content.iter_text()) for key, content in test["details"].items()
            if key in ("traceback", "reason")
        )
        found[test["id"]] = Outcome(test["id"], test["status"], details)

    sink = StreamToDict(on_test)
    sink.startTestRun()
    if path.is_file():
        with open(path, "rb") as fh:
            ByteStreamToStreamResult(fh, non_subunit_name="stdout").run(sink)
    sink.stopTestRun()
    return found


MARKERS = (LOADED, DONE)  # the records that bracket a worker's stream
FINAL = ("success", "fail", "skip", "xfail", "uxsuccess")


@dataclass(frozen=True)
class Audit:
    """What the stream's shape says about the run, beyond each id's status."""

    forged: tuple[str, ...]  # packets no honest worker writes (a student's code did)
    integrity: tuple[str, ...]  # what the worker's own check found after the tests ran
    finished: bool  # the closing marker, with the run's nonce, came last


def audit_stream(path: Path, nonce: str) -> Audit:
    """An honest worker writes: the loaded marker, then per test `inprogress`, its
    attachments and one final status, never interleaved, never twice, then the done
    marker; both markers carry the run's nonce. Anything else was written by code
    under test: results written while the tests were imported, a second result for an
    id, a result without its test having started."""
    from subunit import ByteStreamToStreamResult
    from testtools import StreamResult

    events: list[tuple[str | None, str | None, str | None, bytes]] = []

    class Recorder(StreamResult):
        def status(self, test_id=None, test_status=None, file_name=None, file_bytes=None, **_):
            events.append((test_id, test_status, file_name, bytes(file_bytes or b"")))

    if path.is_file():
        with open(path, "rb") as fh:
            ByteStreamToStreamResult(fh, non_subunit_name="stdout").run(Recorder())
    forged: list[str] = []
    integrity: list[str] = []
    loaded = finished = False
    current: str | None = None
    done_ids: set[str] = set()
    payloads: dict[str, bytes] = {}
    for test_id, status, file_name, data in events:
        if finished:
            forged.append(f"a packet for {test_id or 'no test'} after the closing marker")
            continue
        if test_id in MARKERS:
            if file_name == "debuglab":
                payloads[test_id] = payloads.get(test_id, b"") + data
            if status != "exists":
                continue
            try:
                info = json.loads(payloads.pop(test_id, b"") or b"{}")
            except ValueError:
                info = {}
            if info.get("nonce") != nonce:
                forged.append(f"a {test_id} marker without the run's nonce")
            elif test_id == MARKERS[0]:
                if loaded:
                    forged.append("a second loaded marker")
                loaded = True
            else:
                if not loaded or current is not None:
                    forged.append("the closing marker out of place")
                finished = True
                integrity = [str(p) for p in info.get("problems", [])]
            continue
        if test_id is None:
            continue  # tags or stray output: no status
        if not loaded:
            forged.append(f"a result for {test_id} written while the tests were being imported")
            continue
        if status == "inprogress":
            if current is not None or test_id in done_ids:
                forged.append(f"{test_id} started again or inside another test")
            current = test_id
        elif status in FINAL:
            if current != test_id or test_id in done_ids:
                forged.append(f"a {status} for {test_id} that is not the end of its own run")
            done_ids.add(test_id)
            current = None
        elif current != test_id:
            forged.append(f"an attachment for {test_id} outside its run")
    return Audit(tuple(dict.fromkeys(forged))[:10], tuple(integrity), finished)
