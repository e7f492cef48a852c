"""`breakpoint()` in the mini-cloud's nova process: a remote-pdb session per breakpoint.

remote-pdb alone listens on one fixed port, so a second request reaching a breakpoint
while the first waits cannot bind it and fails with a 500. Here each breakpoint takes
the first free port of a small loopback range (the debug port and the nine after it),
logs where it waits (port, thread, request id, file and line) and registers itself in
`<cloud>/debug-sessions/` so that `debuglab attach` can list the waiting sessions and
attach to one. A session ends, and leaves the registry, when the student continues
without breakpoints, quits or disconnects.

It runs in the nova process under the lab's python and imports nothing from debuglab.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pdb
import socket
import sys
import threading
import time

LOG = logging.getLogger("debuglab.breakpoints")
RANGE = 10  # sessions that can wait at once
_ids = itertools.count(1)


def request_id() -> str | None:
    """The request id of the request this thread serves (oslo.context's current context)."""
    try:
        from oslo_context import context
    except ImportError:
        return None
    current = context.get_current()
    return getattr(current, "request_id", None)


class Registry:
    """The waiting and attached sessions of this process, one JSON file each."""

    def __init__(self, folder: str):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def clear(self) -> None:
        """Forget the sessions of an earlier process (at start)."""
        for name in os.listdir(self.folder):
            if name.endswith(".json"):
                os.unlink(os.path.join(self.folder, name))

    def write(self, session: dict) -> None:
        path = os.path.join(self.folder, f"{session['id']}.json")
        tmp = f"{path}.tmp"
        with open(tmp, "w") as fh:
            json.dump(session, fh)
        os.replace(tmp, path)

    def remove(self, session: dict) -> None:
        try:
            os.unlink(os.path.join(self.folder, f"{session['id']}.json"))
        except FileNotFoundError:
            pass


def listen(first_port: int, count: int = RANGE) -> socket.socket | None:
    """A listening socket on the first free port of first_port .. first_port+count-1."""
    for port in range(first_port, first_port + count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(1)
        return sock
    return None


class SessionPdb(pdb.Pdb):
    """remote-pdb's pdb over one accepted connection, which says when the session ends."""

    def __init__(self, connection: socket.socket, on_end):
        import remote_pdb

        self.handle = remote_pdb.LF2CRLF_FileWrapper(connection)
        self.connection = connection
        self.on_end = on_end
        super().__init__(completekey="tab", stdin=self.handle, stdout=self.handle)

    def _end(self) -> None:
        try:
            self.handle.close()
            self.connection.close()
        except OSError:
            pass
        self.on_end()

    def do_continue(self, arg):
        result = super().do_continue(arg)
        if not self.breaks:  # nothing will stop this thread again: the session is over
            self._end()
        return result

    do_c = do_cont = do_continue

    def do_quit(self, arg):
        result = super().do_quit(arg)
        self._end()
        return result

    do_q = do_exit = do_quit

    def do_EOF(self, arg):  # noqa: N802 (pdb's name): the student disconnected
        self.message("")
        self.set_continue()
        self._end()
        return 1


class Hook:
    """sys.breakpointhook for the nova process."""

    def __init__(self, registry: Registry, first_port: int):
        self.registry = registry
        self.first_port = first_port

    def __call__(self, *args, **kwargs):
        frame = sys._getframe(1)
        sock = listen(self.first_port)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        if sock is None:
            LOG.error("breakpoint() at %s skipped: %d remote-pdb sessions wait already on 127.0.0.1:%d-%d; "
                      "attach to them (`debuglab attach --list`) or continue them", where, RANGE,
                      self.first_port, self.first_port + RANGE - 1)
            return None
        port = sock.getsockname()[1]
        thread = threading.current_thread()
        session = {"id": f"{os.getpid()}-{next(_ids)}", "pid": os.getpid(), "port": port,
                   "thread": thread.name, "thread_id": thread.ident, "request_id": request_id(),
                   "file": frame.f_code.co_filename, "line": frame.f_lineno, "function": frame.f_code.co_name,
                   "since": time.time(), "state": "waiting"}
        self.registry.write(session)
        LOG.warning("RemotePdb session open at 127.0.0.1:%d, waiting for connection (thread %s, request %s, "
                    "%s in %s); `debuglab attach --port %d`", port, thread.name, session["request_id"], where,
                    session["function"], port)
        try:
            connection, address = sock.accept()
        finally:
            sock.close()  # the port is free again for the next breakpoint
        LOG.warning("RemotePdb accepted connection from %s on 127.0.0.1:%d (thread %s)", address, port, thread.name)
        session["state"] = "attached"
        self.registry.write(session)
        debugger = SessionPdb(connection, lambda: self.registry.remove(session))
        try:
            debugger.set_trace(frame)
        except OSError:
            self.registry.remove(session)
        return None


def install(cloud_dir: str, first_port: int) -> Hook:
    """Make breakpoint() open a session of its own; forget an earlier process's sessions."""
    registry = Registry(os.path.join(cloud_dir, "debug-sessions"))
    registry.clear()
    hook = Hook(registry, first_port)
    sys.breakpointhook = hook
    return hook
