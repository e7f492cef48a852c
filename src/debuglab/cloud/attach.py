"""`debuglab attach`: a remote-pdb client with line editing and history (readline),
instead of raw telnet. It waits for a breakpoint() to open the session, then relays
lines: remote-pdb's output to the terminal, the student's commands to remote-pdb."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from debuglab.cloud.errors import CloudError

PROMPT = "(Pdb) "


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


def read_until_prompt(sock: socket.socket) -> tuple[str, bool]:
    """(text remote-pdb sent up to and without its prompt, whether a prompt came);
    no prompt means the session ended (continue, or the request finished)."""
    sock.settimeout(None)
    data = b""
    while not data.endswith(PROMPT.encode()):
        try:
            chunk = sock.recv(65536)
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


def session(sock: socket.socket, read_line: Callable[[str], str], out: TextIO) -> int:
    """Relay one remote-pdb session; returns the number of commands sent.

    remote-pdb keeps the connection open after `continue`; the session ends there unless
    the student set breakpoints in it (then it waits for the next stop)."""
    sent = 0
    breakpoints = False
    while True:
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


def attach(port: int, *, wait: float = 0, again: bool = False, history: Path | None = None,
           out: TextIO = sys.stdout) -> None:
    """Attach to remote-pdb; with `again`, wait for the next breakpoint after each session."""
    history = history or Path(os.path.expanduser("~/.debuglab_pdb_history"))
    rl = _setup_readline(history)
    try:
        while True:
            with connect(port, wait) as sock:
                out.write(f"[attached to remote-pdb on 127.0.0.1:{port}; Ctrl-D continues]\n")
                session(sock, input, out)
            if not again:
                return
            wait = 24 * 3600
    finally:
        if rl is not None:
            try:
                rl.write_history_file(history)
            except OSError:
                pass
