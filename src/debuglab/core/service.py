"""A background service of a lab (the mini-cloud, JupyterLab), as the kit keeps it: a
pidfile that records what runs, the options of the last start, a log that each start
appends to, and processes started in sessions of their own so that stopping one stops
everything it started. debuglab.cloud.supervisor and debuglab.notebooks.jupyterlab
build on these.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from pathlib import Path
from typing import Callable, TypeVar

from debuglab.core import private
from debuglab.core.files import write_atomic

State = TypeVar("State")


def read_state(pidfile: Path, load: Callable[[dict], State], alive: Callable[[State], bool]) -> State | None:
    """The state a pidfile records, while `alive(state)` says a process of it runs; None
    otherwise. A pidfile that is unreadable, or whose processes are gone, is removed."""
    try:
        state = load(json.loads(pidfile.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        pidfile.unlink(missing_ok=True)
        return None
    if alive(state):
        return state
    pidfile.unlink(missing_ok=True)
    return None


def write_state(pidfile: Path, state) -> None:
    """Record a dataclass `state` in the pidfile, whole or not at all."""
    write_json(pidfile, dataclasses.asdict(state))


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def read_options(path: Path) -> dict:
    """The options the last start recorded ({} when there are none or they are unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def spawn(argv: list[str], *, log: Path, title: str, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start `argv` in a session of its own, its output appended to `log` (0600) after a
    line that names this start; the processes it makes get the private umask. Returns the
    child and the log's offset where this start's output begins."""
    private.touch(log)
    with open(log, "ab") as fh:
        fh.write(f"\n===== debuglab {title} {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode())
        offset = fh.tell()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=fh,
                                 stderr=subprocess.STDOUT, start_new_session=True, umask=private.UMASK)
    return child, offset


def log_excerpt(log: Path, offset: int = 0, lines: int = 25) -> str:
    """What explains a failed start, from `offset` on: the last traceback, else the log;
    either cut to its head and its end when longer than `lines`."""
    try:
        with open(log, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.rstrip().splitlines()
    # the last traceback (plain, or oslo.log's "... ERROR x Traceback (most recent call last):")
    start = max((i for i, line in enumerate(all_lines) if "Traceback (most recent call last)" in line),
                default=None)
    shown = all_lines[start:] if start is not None else all_lines
    if len(shown) > lines:  # its head says where it began, its tail what went wrong
        shown = shown[:3] + ["    ..."] + shown[-(lines - 4):]
    return "\n".join(shown) if shown else "(the log is empty)"


def log_tail(log: Path, lines: int = 25) -> str:
    """The last `lines` lines of a log, read from its end."""
    size = log.stat().st_size if log.exists() else 0
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, size - 200 * max(lines, 1)))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(the log is empty)"
