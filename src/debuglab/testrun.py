"""One test runner for the whole kit: a list of test ids runs in a worker process of the
lab venv, and the status of each id is read from the subunit v2 stream it writes.

nova's tests do not run under pytest; OpenStack reads results as subunit. The worker
imports nova once for all ids. An id that never reports success has not passed: a crash,
a hang or an `os._exit(0)` leaves ids missing or in progress, never passed.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from debuglab import proc
from debuglab.errors import ProcError

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
             *worker_args],
            cwd=tree, env=full_env, inherit_env=False, timeout=timeout, check=False, output_file=log,
        )
        returncode = done.returncode
    except ProcError:  # timed out: whatever reported before the kill still counts
        returncode = None
    seconds = time.monotonic() - start
    reported = read_stream(stream)
    outcomes = {i: reported.get(i, Outcome(i, "missing")) for i in ids}
    return Run(outcomes, reported, returncode, seconds, log)


def read_stream(path: Path) -> dict[str, Outcome]:
    """The final status of every test id in a subunit v2 file."""
    from subunit import ByteStreamToStreamResult
    from testtools import StreamToDict

    found: dict[str, Outcome] = {}

    def on_test(test: dict) -> None:
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
