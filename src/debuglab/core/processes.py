"""The lab's background processes as the kernel sees them (/proc): is a pid alive, which
processes share a session, stopping a whole session, and which loopback ports are free,
listened on, and by whom. Shared by the mini-cloud's supervisor and JupyterLab's."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Iterator


def alive(pid: int) -> bool:
    """True for a live process (a zombie is dead; our own zombie children are reaped)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    # a multi-threaded process's main thread turns zombie before its other threads have
    # gone (and with them its sockets): the process lives while any thread does
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            return True
    return False


def command_line(pid: int) -> list[bytes]:
    """The process's argv ([] once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _all() -> Iterator[tuple[int, int, int]]:
    """(pid, parent pid, session id) of every process."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry), int(fields[1]), int(fields[3])


def session_members(sid: int) -> list[int]:
    """Every live process in the session `sid` leads (a debugger's adapter included)."""
    return [pid for pid, _, session in _all() if session == sid and alive(pid)]


def sessions_started_by(pid: int) -> list[int]:
    """The sessions led by children of `pid` (JupyterLab's kernels and terminals)."""
    return [child for child, parent, session in _all() if parent == pid and session == child]


def kill_session(sid: int, timeout: float) -> None:
    """SIGTERM every process of the session, then SIGKILL what is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = session_members(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(alive(pid) for pid in pids):
                break
            time.sleep(0.05)
    for pid in session_members(sid):
        alive(pid)  # reaps our own zombies


# --------------------------------------------------------------------------- loopback ports


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(names, low: int = 20000, high: int = 32000) -> dict[str, int]:
    """One free loopback port per name, below the kernel's ephemeral range."""
    import random

    chosen: list[int] = []
    while len(chosen) < len(names):
        port = random.randrange(low, high)
        if port not in chosen and port_free(port):
            chosen.append(port)
    return dict(zip(names, chosen))


def wait_port_free(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


TCP_STATES = {"01": "ESTABLISHED", "0A": "LISTEN"}


def _tcp_sockets() -> Iterator[tuple[str, str, int, str]]:
    """(state, address, local port, inode) of each TCP socket of the machine, from
    /proc/net/tcp and tcp6, read without connecting to anything."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(addr_hex)
            if len(raw) == 4:
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, words)
            yield TCP_STATES.get(fields[3], fields[3]), addr, int(port_hex, 16), fields[9]


def tcp_states(port: int) -> set[str]:
    """The states (LISTEN, ESTABLISHED) of this machine's TCP sockets whose local port is
    `port`, read without connecting (a connection would be taken as a client by whoever
    listens)."""
    return {state for state, _, local, _ in _tcp_sockets() if local == port and state in TCP_STATES.values()}


def listeners() -> dict[int, list[tuple[str, int]]]:
    """pid -> the (address, port) of each TCP socket it listens on (what `ss -tlnp` shows)."""
    sockets = {inode: (addr, port) for state, addr, port, inode in _tcp_sockets() if state == "LISTEN"}
    found: dict[int, list[tuple[str, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                found.setdefault(int(entry), []).append(sockets[target[8:-1]])
    return found


def port_holder(port: int) -> str:
    """'; it is held by pid N (command)' for an error message, or '' when nobody listens."""
    for pid, socks in listeners().items():
        if any(p == port for _, p in socks):
            cmd = b" ".join(command_line(pid)).decode(errors="replace").strip() or "?"
            return f"; it is held by pid {pid} ({cmd[:120]})"
    return ""
