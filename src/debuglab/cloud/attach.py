"""`debuglab attach`: a remote-pdb client with line editing and history (readline),
instead of raw telnet. It waits for a breakpoint() to open a session, then relays
lines: remote-pdb's output to the terminal, the student's commands to remote-pdb.

Each breakpoint() in the cloud opens a session of its own on a port of a small loopback
range and registers it in `<lab>/cloud/debug-sessions/` (see services/breakpoints.py, which runs
in the nova process): `waiting_sessions` lists them, and attach takes the one asked for
or the oldest waiting one."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TextIO

from debuglab.cloud.errors import CloudError
from debuglab.core.processes import tcp_states

PROMPT = "(Pdb) "


@dataclass(frozen=True)
class Session:
    """A breakpoint() of the cloud waiting for a debugger (or one attached already)."""

    port: int
    thread: str
    request_id: str | None
    file: str
    line: int
    function: str
    since: float
    state: str  # waiting | attached
    pid: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


def short_path(path: str, stack: Path) -> str:
    """A file of a checkout as its path in that checkout (what `git diff` and
    `cloud status --file` name): <lab>/stack/nova/nova/scheduler/x.py -> nova/scheduler/x.py;
    a file outside the lab's checkouts (a library's) stays whole."""
    file = Path(path)
    for root in (stack, stack.resolve()):
        try:
            rel = file.relative_to(root)
        except ValueError:
            continue
        if len(rel.parts) > 1:  # <project>/<path in the checkout>
            return Path(*rel.parts[1:]).as_posix()
    return path


def sessions(folder: Path) -> list[Session]:
    """The registered sessions that are alive, oldest first: of a live process, and still
    listening (waiting) or still connected (attached); a debugger killed mid-session
    leaves a registration behind that is not listed."""
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            session = Session(**{k: data[k] for k in Session.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or from another version
        live = "LISTEN" if session.state == "waiting" else "ESTABLISHED"
        if Path(f"/proc/{session.pid}").exists() and live in tcp_states(session.port):
            found.append(session)
    return sorted(found, key=lambda s: s.since)


def pick(folder: Path, port: int | None = None, wait: float = 0) -> Session | None:
    """The waiting session on `port`, or the oldest waiting one; waits up to `wait` s."""
    deadline = time.monotonic() + wait
    while True:
        waiting = [s for s in sessions(folder) if s.state == "waiting" and port in (None, s.port)]
        if waiting:
            return waiting[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def connect(port: int, wait: float = 0) -> socket.socket:
    """Connect to remote-pdb on 127.0.0.1:port, retrying for `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise CloudError(f"no remote-pdb session on 127.0.0.1:{port} ({exc.strerror or exc}); "
                                 "it opens when the cloud reaches a breakpoint() — start the cloud with "
                                 "`--debug remote-pdb`, trigger the code, or use `attach --wait`") from None
            time.sleep(0.2)


FIRST_PROMPT_SECONDS = 10  # remote-pdb prompts at once; what does not is not remote-pdb


def read_until_prompt(sock: socket.socket, timeout: float | None = None) -> tuple[str, bool]:
    """(text remote-pdb sent up to and without its prompt, whether a prompt came);
    no prompt means the session ended (continue, or the request finished). With
    `timeout`, a prompt that does not come in time raises NotPdb with what came instead."""
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(PROMPT.encode()):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise NotPdb(data.decode(errors="replace")) from None
        except OSError:
            chunk = b""
        if not chunk:
            return data.decode(errors="replace"), False
        data += chunk
    return data[: -len(PROMPT)].decode(errors="replace"), True


CONTINUE = {"c", "cont", "continue"}
QUIT = {"q", "quit", "exit"}
BREAK = ("b ", "break ", "tbreak ")


def _drain(sock: socket.socket, seconds: float) -> str:
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data.decode(errors="replace")


class NotPdb(Exception):
    """What answered on a port did not prompt as pdb does."""

    def __init__(self, sent: str):
        super().__init__(sent)
        self.sent = sent


def _shown(sent: str) -> str:
    sent = sent.strip()
    return repr(sent[:120]) + ("..." if len(sent) > 120 else "") if sent else "nothing"


def session(sock: socket.socket, read_line: Callable[[str], str], out: TextIO, first: str | None = None) -> int:
    """Relay one remote-pdb session; returns the number of commands sent.

    remote-pdb keeps the connection open after `continue`; the session ends there unless
    the student set breakpoints in it (then it waits for the next stop)."""
    sent = 0
    breakpoints = False
    while True:
        if first is not None:  # the first prompt, read already by whoever checked it is pdb
            text, prompted, first = first, True, None
        else:
            text, prompted = read_until_prompt(sock)
        out.write(text.replace("\r\n", "\n"))
        out.flush()
        if not prompted:
            out.write("\n[remote-pdb session closed]\n")
            return sent
        try:
            line = read_line(PROMPT)
        except EOFError:
            line = "c"  # Ctrl-D: let nova carry on rather than leave it stopped
            out.write("c\n")
        except KeyboardInterrupt:
            out.write("\n")
            continue
        sock.sendall(line.encode() + b"\n")
        sent += 1
        command = line.strip()
        if command.startswith(BREAK):
            breakpoints = True
        if command in QUIT or (command in CONTINUE and not breakpoints):
            out.write(_drain(sock, 0.3).replace("\r\n", "\n"))
            out.write("\n[remote-pdb session closed]\n")
            return sent


def _setup_readline(history: Path):
    try:
        import readline
    except ImportError:  # no line editing on this platform: plain input()
        return None
    try:
        readline.read_history_file(history)
    except OSError:
        pass
    readline.set_history_length(1000)
    return readline


def scripted(commands: list[str], out: TextIO) -> Callable[[str], str]:
    """A read_line that types `commands`, one per prompt, echoing each as a terminal would;
    when they run out, nova is let go on (`c`) rather than left stopped."""
    pending = list(commands)

    def read_line(prompt: str) -> str:
        line, note = (pending.pop(0), "") if pending else ("c", "   # commands done: nova carries on")
        out.write(f"{prompt}{line}{note}\n")
        out.flush()
        return line

    return read_line


def attach(port: int | None, *, registry: Path | None = None, wait: float = 0, again: bool = False,
           history: Path | None = None, out: TextIO = sys.stdout, commands: list[str] | None = None) -> None:
    """Attach to a remote-pdb session: the one on `port`, else the oldest waiting one of
    the registry; with `again`, wait for the next breakpoint after each session. With
    `commands`, type them and print what they print (a script or a notebook cell drives
    it, no terminal needed); else read the student's lines with line editing."""
    history = history or Path(os.path.expanduser("~/.debuglab_pdb_history"))
    rl = _setup_readline(history) if commands is None else None
    try:
        while True:
            target, about = port, ""
            if registry is not None:
                chosen = pick(registry, port, wait)
                if chosen is not None:
                    target = chosen.port
                    about = f" ({chosen.where}, thread {chosen.thread}, request {chosen.request_id})"
                    others = [s for s in sessions(registry) if s.state == "waiting" and s.port != target]
                    if others:
                        about += f"; {len(others)} more waiting (`debuglab attach --list`)"
                elif port is None:
                    after = f" after {wait:.0f} s" if wait else ""
                    raise CloudError(f"no breakpoint() is waiting for a debugger{after}; "
                                     "trigger the code (the cloud must run with remote-pdb, its default), "
                                     "or wait with `debuglab attach --wait SECONDS`")
            with connect(target, wait) as sock:
                try:
                    first, prompted = read_until_prompt(sock, FIRST_PROMPT_SECONDS)
                except NotPdb as exc:
                    raise CloudError(f"127.0.0.1:{target} answered, but not as remote-pdb (no `(Pdb)` prompt in "
                                     f"{FIRST_PROMPT_SECONDS} s; it sent {_shown(exc.sent)}): is it another "
                                     "service's port? `debuglab attach --list` shows the waiting sessions") from None
                if not prompted:
                    raise CloudError(f"127.0.0.1:{target} closed the connection without a `(Pdb)` prompt "
                                     f"(it sent {_shown(first)}): not a remote-pdb session")
                out.write(f"[attached to remote-pdb on 127.0.0.1:{target}{about}; Ctrl-D continues]\n")
                session(sock, input if commands is None else scripted(commands, out), out, first=first)
            if not again:
                return
            wait = 24 * 3600
    finally:
        if rl is not None:
            try:
                rl.write_history_file(history)
            except OSError:
                pass
