"""A background service's pidfile, spawn and log (core/service.py), shared by the cloud
and JupyterLab."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from debuglab.core import processes, service


@dataclass
class State:
    pid: int
    port: int


def test_a_pidfile_names_a_running_service_and_a_stale_or_broken_one_is_removed(tmp_path):
    pidfile = tmp_path / "svc.json"
    service.write_state(pidfile, State(pid=123, port=8888))
    assert json.loads(pidfile.read_text()) == {"pid": 123, "port": 8888}
    assert service.read_state(pidfile, lambda d: State(**d), lambda s: True) == State(123, 8888)
    assert service.read_state(pidfile, lambda d: State(**d), lambda s: False) is None  # its process is gone
    assert not pidfile.exists()
    pidfile.write_text("{not json")
    assert service.read_state(pidfile, lambda d: State(**d), lambda s: True) is None and not pidfile.exists()
    assert service.read_state(pidfile, lambda d: State(**d), lambda s: True) is None  # none at all


def test_spawn_logs_each_start_apart_and_the_excerpt_shows_the_traceback(tmp_path):
    log = tmp_path / "svc.log"
    log.write_text("an earlier start's line\n")
    child, offset = service.spawn([sys.executable, "-c", "print('x' * 10); 1/0"], log=log, title="svc start",
                                  cwd=tmp_path, env={})
    assert child.wait(30) == 1
    assert (log.stat().st_mode & 0o777) == 0o600  # a log may hold what a student typed
    text = log.read_text()
    assert "===== debuglab svc start " in text and text.index("earlier") < offset
    excerpt = service.log_excerpt(log, offset)
    assert excerpt.startswith("Traceback (most recent call last)") and "ZeroDivisionError" in excerpt
    assert "earlier" not in excerpt  # this start's output only
    assert not processes.alive(child.pid)


def test_the_log_tail_reads_from_the_end(tmp_path):
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {n}\n" for n in range(100_000)))
    assert service.log_tail(log, 3) == "line 99997\nline 99998\nline 99999"
    assert service.log_tail(tmp_path / "none.log") == "(no log)"
