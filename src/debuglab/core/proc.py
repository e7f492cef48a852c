"""The one subprocess helper: logs the command, captures output, enforces a timeout,
and raises ProcError with the output attached."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from debuglab.core.errors import ProcError

log = logging.getLogger(__name__)

OUTPUT_TAIL = 4000  # characters of output kept in an error message


@dataclass(frozen=True)
class Completed:
    args: list[str]
    returncode: int
    output: str  # stdout and stderr interleaved ("" when sent to a file)


def run(
    args: list[str | os.PathLike],
    *,
    cwd: str | os.PathLike | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = 600,
    check: bool = True,
    input: str | None = None,
    output_file: Path | None = None,
    inherit_env: bool = True,
) -> Completed:
    """Run a command in its own process group; on timeout the whole group is killed.

    `env` entries are added to the current environment (a value of None removes one);
    with inherit_env=False they are the whole environment.
    `output_file` sends stdout and stderr to that file instead of capturing them.
    """
    argv = [str(a) for a in args]
    full_env = dict(os.environ) if inherit_env else {}
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    log.debug("run: %s (cwd=%s)", shlex.join(argv), cwd)
    sink = open(output_file, "wb") if output_file else subprocess.PIPE
    try:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )
    except OSError as exc:
        if output_file:
            sink.close()
        raise ProcError(f"cannot run {argv[0]}: {exc}") from exc
    try:
        out, _ = proc.communicate(input.encode() if input is not None else None, timeout=timeout)
    except BaseException as exc:  # timeout, or Ctrl-C: never leave the group behind
        _kill_group(proc)
        if isinstance(exc, subprocess.TimeoutExpired):
            text = _read_tail(output_file) if output_file else (exc.output or b"").decode(errors="replace")
            raise ProcError(
                f"timed out after {timeout:.0f} s: {shlex.join(argv)}\n{text[-OUTPUT_TAIL:]}",
                output=text,
            ) from None
        raise
    finally:
        if output_file:
            sink.close()
    text = (out or b"").decode(errors="replace")
    if check and proc.returncode != 0:
        shown = text if not output_file else _read_tail(output_file)
        raise ProcError(
            f"command failed (exit {proc.returncode}): {shlex.join(argv)}\n{shown[-OUTPUT_TAIL:]}",
            returncode=proc.returncode,
            output=text,
        )
    return Completed(argv, proc.returncode, text)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _read_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - OUTPUT_TAIL))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def interactive(args: list[str | os.PathLike], *, cwd: str | os.PathLike | None = None,
                env: dict[str, str] | None = None, inherit_env: bool = True) -> int:
    """Run a command on the user's terminal (a debugger session): stdin, stdout and stderr
    are the user's, there is no timeout; returns its exit code. Ctrl-C reaches it, not us."""
    argv = [str(a) for a in args]
    full_env = dict(os.environ) if inherit_env else {}
    full_env.update({k: v for k, v in (env or {}).items() if v is not None})
    log.debug("run (interactive): %s (cwd=%s)", shlex.join(argv), cwd)
    try:
        child = subprocess.Popen(argv, cwd=cwd, env=full_env)
    except OSError as exc:
        raise ProcError(f"cannot run {argv[0]}: {exc}") from exc
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the debugger handles Ctrl-C itself
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
