"""The grader's fork server: one worker of the lab venv that imported nova once (what no
graded scope reaches), and forks a sandboxed child per job. Each job's stream is read
and audited by debuglab.core.testrun, as a one-shot run's is."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from debuglab.core.errors import ForkServerError
from debuglab.core.testrun import KEPT_ENV, TEST_ENV, WORKER, Outcome, Run, read_stream


@dataclass
class Job:
    """One run in the fork server: `ids` against the code in `tree`."""

    tree: Path
    ids: Sequence[str]
    work_dir: Path  # the stream and log go here; home/ and tmp/ are made here
    timeout: float
    uid: int | None = None
    cgroup: Path | None = None
    nproc: int | None = None
    student_files: Sequence[str] = ()
    name: str = "run"
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))


class Server:
    """The fork server (_worker.serve) in a sandbox: it imports the baseline's modules
    that no student change reaches once (`plan`: {"modules": to import, "blocked": the
    modules a student may change}), then runs each job in a child of its own.

    A long-lived process with a conversation on its pipes, which proc.run (run to
    completion) does not do: Popen here, in its own session, killed as a group on close."""

    def __init__(self, python: Path, base: Path, plan: dict, work_dir: Path, *,
                 wrapper: Sequence[str | os.PathLike] = (), python_args: Sequence[str] = (),
                 worker_args: Sequence[str | os.PathLike] = (), env: dict[str, str] | None = None,
                 start_timeout: float = 600):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.log = work_dir / "server.log"
        plan_file = work_dir / "server.plan.json"
        plan_file.write_text(json.dumps(plan))
        full_env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ} | TEST_ENV | (env or {})
        argv = [*map(str, wrapper), str(python), *python_args, str(WORKER), "--tree", str(base),
                "--serve", str(plan_file), *map(str, worker_args)]
        with open(self.log, "ab") as log:
            self._proc = subprocess.Popen(argv, cwd=base, env=full_env, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Job, Future, float]] = {}
        self._n = 0
        self.hello = self._read_hello(start_timeout)
        self._reader = threading.Thread(target=self._read_replies, daemon=True)
        self._reader.start()

    def _read_hello(self, timeout: float) -> dict:
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            self.close()
            raise ForkServerError(f"the test server did not start (log: {self.log}):\n{_tail(self.log)}")
        hello = json.loads(result[0])
        with open(self.log, "a") as fh:
            fh.write(f"[debuglab] the test server is ready: {json.dumps(hello)}\n")
        if hello.get("leaked"):
            self.close()
            raise ForkServerError(f"the test server imported modules a student's change reaches: {hello['leaked'][:5]}")
        return hello

    def _read_replies(self) -> None:
        for line in self._proc.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                entry = self._pending.pop(reply.get("job"), None)
            if entry:
                job, future, _ = entry
                future.set_result(self._run(job, reply.get("returncode"), reply.get("seconds", 0.0)))
        with self._lock:  # the server is gone: nothing pending will be answered
            pending, self._pending = self._pending, {}
        for job, future, started in pending.values():
            future.set_result(self._run(job, None, time.monotonic() - started, lost=True))

    def _run(self, job: Job, returncode: int | None, seconds: float, lost: bool = False) -> Run:
        stream, log = job.work_dir / f"{job.name}.subunit", job.work_dir / f"{job.name}.log"
        if lost:
            with open(log, "a") as fh:
                fh.write(f"\n[debuglab] the test server stopped before this job ended (log: {self.log})\n")
        reported = read_stream(stream)
        outcomes = {i: reported.get(i, Outcome(i, "missing")) for i in job.ids}
        return Run(outcomes, reported, returncode, seconds, log, stream, job.nonce)

    def submit(self, job: Job) -> "Future[Run]":
        job.work_dir.mkdir(parents=True, exist_ok=True)
        home, tmp = job.work_dir / "home", job.work_dir / "tmp"
        for path in (home, tmp):
            path.mkdir(exist_ok=True)
        if job.uid is not None:
            for path in (job.work_dir, home, tmp):
                os.chown(path, job.uid, job.uid)
        future: Future = Future()
        with self._lock:
            self._n += 1
            key = f"{self._n}"
            self._pending[key] = (job, future, time.monotonic())
        request = {"job": key, "tree": str(job.tree), "ids": list(job.ids), "timeout": job.timeout,
                   "out": str(job.work_dir / f"{job.name}.subunit"), "log": str(job.work_dir / f"{job.name}.log"),
                   "home": str(home), "tmp": str(tmp), "uid": job.uid, "nproc": job.nproc,
                   "cgroup": str(job.cgroup) if job.cgroup else None, "nonce": job.nonce,
                   "student_files": list(job.student_files)}
        try:
            with self._lock:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            with self._lock:
                self._pending.pop(key, None)
            future.set_result(self._run(job, None, 0.0, lost=True))
        return future

    def close(self) -> None:
        try:
            if self._proc.stdin:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self._proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self._proc.wait()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""
