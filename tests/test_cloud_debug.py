"""The debugger hooks against a running mini-cloud: remote-pdb driven over its socket
(through debuglab's own attach client) while other requests are answered, and debugpy
answering a DAP client and stopping in nova code. Real processes, no mocks."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import pytest

from debuglab.cloud import attach, hooks, supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.core import processes
from tests.test_cloud import (  # noqa: F401
    cloud,
    edit,
    free_ports,
    http,
    novaclient,
    restore,
    settings,
)

pytestmark = pytest.mark.slow

FLAVORS = "nova/api/openstack/compute/flavors.py"
DETAIL = "    def detail(self, req):\n"


def in_thread(fn):
    box = {}

    def run():
        box["result"] = fn()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_remote_pdb_session_over_its_socket_while_other_requests_are_served(cloud):
    (port,) = free_ports(1)
    edit(cloud, FLAVORS, DETAIL, DETAIL + "        breakpoint()\n")
    try:
        supervisor.restart(cloud, debug="remote-pdb", debug_port=port)
        token = novaclient(cloud, "")["token"]
        api = settings(cloud).endpoint("nova")
        stopped, box = in_thread(lambda: http(f"{api}/flavors/detail", token=token, timeout=120))

        sock = attach.connect(port, wait=60)
        typed = iter(["where", "p req.method", "p type(self).__name__", "c"])
        served = []

        def student(prompt: str) -> str:
            if not served:  # stopped at the breakpoint: the stopped request blocks nobody else
                t0 = time.monotonic()
                served.append(http(f"{api}/servers", token=token)[0])
                served.append(time.monotonic() - t0)
                served.append(stopped.is_alive())
            return next(typed)

        # drive the session with debuglab's attach client, as a student would type
        out = io.StringIO()
        sent = attach.session(sock, student, out)
        sock.close()
        transcript = out.getvalue()
        assert served[0] == 200 and served[1] < 10 and served[2], served
        assert "flavors.py" in transcript and "detail()" in transcript, transcript
        assert sent == 4
        assert "nova/api/openstack/wsgi.py" in transcript  # `where` shows the WSGI stack
        assert "'GET'" in transcript
        assert "'FlavorsController'" in transcript
        assert "[remote-pdb session closed]" in transcript

        stopped.join(60)
        assert box["result"][0] == 200
        assert "m1.tiny" in box["result"][1].decode()
        log = CloudPaths(cloud).log("nova").read_text()
        assert f"RemotePdb session open at 127.0.0.1:{port}" in log
        assert f"remote-pdb on 127.0.0.1:{port}" in hooks.instructions(cloud, settings(cloud))

        two_at_once(cloud, port, api, token)
    finally:
        restore(cloud, FLAVORS)
    supervisor.restart(cloud, debug=None)


def two_at_once(cloud, port: int, api: str, token: str) -> None:
    """Two requests stopped at the same breakpoint() at once: each has its own session,
    listed with its thread and request id; attach takes the oldest, then the other."""
    from click.testing import CliRunner

    from debuglab.cloud.commands import attach as attach_command

    registry = CloudPaths(cloud).dir / "debug-sessions"
    first, first_box = in_thread(lambda: http(f"{api}/flavors/detail?minDisk=0", token=token, timeout=120))
    assert attach.pick(registry, wait=60) is not None
    second, second_box = in_thread(lambda: http(f"{api}/flavors/detail?minDisk=1", token=token, timeout=120))
    deadline = time.monotonic() + 60
    while len(attach.sessions(registry)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    waiting = attach.sessions(registry)
    assert len(waiting) == 2, waiting
    assert [s.port for s in waiting] == [port, port + 1]  # the first free ports of the range
    assert len({s.thread for s in waiting}) == 2 and len({s.request_id for s in waiting}) == 2, waiting
    assert all(s.request_id.startswith("req-") and s.state == "waiting" for s in waiting), waiting
    assert all(s.file.endswith(FLAVORS) and s.function == "detail" for s in waiting), waiting
    listed = CliRunner().invoke(attach_command, ["--dir", str(cloud.root), "--list"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and str(port + 1) in listed.output and waiting[1].request_id in listed.output, \
        listed.output
    # how many wait, at which line, and the conditional form that stops at only one of them
    line = waiting[0].line
    assert f"2 session(s) waiting: 2 at {FLAVORS}:{line}" in listed.output, listed.output
    assert "if flavor.flavorid == '2': breakpoint()" in listed.output
    log = CloudPaths(cloud).log("nova").read_text()
    for s in waiting:
        assert f"RemotePdb session open at 127.0.0.1:{s.port}, waiting for connection (thread {s.thread}, " \
               f"request {s.request_id}" in log

    seen = []
    chosen = attach.pick(registry)  # attach's default: the oldest waiting session
    with attach.connect(chosen.port) as sock:
        out = io.StringIO()
        typed = iter(["p req.GET.get('minDisk')", "c"])
        attach.session(sock, lambda prompt: next(typed), out)
    seen.append((chosen.port, out.getvalue()))
    # then the next one, driven without a terminal: `debuglab attach --command ...`
    import subprocess
    import sys
    from pathlib import Path

    driven = subprocess.run([Path(sys.executable).with_name("debuglab"), "attach", "--dir", cloud.root,
                             "--command", "p req.GET.get('minDisk')"], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert driven.returncode == 0, driven.stdout + driven.stderr
    assert "(Pdb) p req.GET.get('minDisk')" in driven.stdout and "commands done: nova carries on" in driven.stdout
    seen.append((port + 1, driven.stdout))
    assert [p for p, _ in seen] == [port, port + 1]
    assert "'0'" in seen[0][1] and "'1'" in seen[1][1], seen  # each session is its own request
    first.join(60)
    second.join(60)
    assert first_box["result"][0] == 200 and second_box["result"][0] == 200
    assert attach.sessions(registry) == []  # continued sessions leave the registry


class DAP:
    """A minimal Debug Adapter Protocol client (what VS Code speaks to debugpy)."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = b""
        self.seq = 0
        self.messages: list[dict] = []

    def send(self, command: str, **arguments) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def _read(self) -> dict:
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = int(head.split(b":")[1])
        while len(self.buf) < length:
            self.buf += self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return json.loads(body)

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("debugpy closed the connection")
        return data

    def wait(self, predicate, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for message in self.messages:
            if predicate(message):
                self.messages.remove(message)
                return message
        while time.monotonic() < deadline:
            message = self._read()
            if predicate(message):
                return message
            self.messages.append(message)
        raise TimeoutError("no such DAP message")

    def response(self, seq: int, timeout: float = 60) -> dict:
        return self.wait(lambda m: m.get("type") == "response" and m.get("request_seq") == seq, timeout)

    def event(self, name: str) -> dict:
        return self.wait(lambda m: m.get("type") == "event" and m.get("event") == name)


def attach_and_stop_in_nova(cloud, port: int) -> DAP:
    """A DAP client's whole session: initialize, attach, a breakpoint in nova's flavors
    controller, a request stopped there (while another is served), continue."""
    launch = hooks.launch_json(cloud, port)["configurations"][0]
    dap = initialized_client(port)
    attach_seq = dap.send("attach", **{k: v for k, v in launch.items() if k not in ("name", "type", "request")})
    dap.event("initialized")
    source = cloud.checkout("nova") / FLAVORS
    line = source.read_text().splitlines().index(DETAIL.rstrip("\n")) + 3  # context = ...
    bps = dap.response(dap.send("setBreakpoints", source={"path": str(source)}, breakpoints=[{"line": line}]))
    assert bps["success"] and bps["body"]["breakpoints"][0]["verified"], bps
    assert dap.response(dap.send("configurationDone"))["success"]
    assert dap.response(attach_seq)["success"]

    token = novaclient(cloud, "")["token"]
    api = settings(cloud).endpoint("nova")
    stopped, box = in_thread(lambda: http(f"{api}/flavors/detail", token=token, timeout=120))
    event = dap.event("stopped")
    assert event["body"]["reason"] == "breakpoint"
    thread_id = event["body"]["threadId"]
    frames = dap.response(dap.send("stackTrace", threadId=thread_id))["body"]["stackFrames"]
    assert frames[0]["source"]["path"].endswith(FLAVORS) and frames[0]["line"] == line
    assert frames[0]["name"] == "detail"

    # other requests are served while one thread is stopped
    assert http(f"{api}/servers", token=token)[0] == 200
    assert stopped.is_alive()

    assert dap.response(dap.send("continue", threadId=thread_id))["success"]
    stopped.join(60)
    assert box["result"][0] == 200
    return dap


def initialized_client(port: int, timeout: float = 60) -> DAP:
    """A client whose `initialize` was answered; connecting is retried while nothing (or
    a dying adapter) is at the port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            dap = DAP(port)
            dap.sock.settimeout(10)
            init = dap.response(dap.send("initialize", adapterID="debugpy", clientID="debuglab-test",
                                         linesStartAt1=True, columnsStartAt1=True, pathFormat="path"),
                                timeout=10)
            assert init["success"], init
            dap.sock.settimeout(60)
            return dap
        except (OSError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_debugpy_answers_dap_and_stops_in_nova_code(cloud):
    """...and keeps listening after a client that closes its socket without waiting for
    replies (debugpy's adapter dies then; the hook starts a new one)."""
    (port,) = free_ports(1)
    supervisor.restart(cloud, debug="debugpy", debug_port=port)
    try:
        launch = hooks.launch_json(cloud, port)["configurations"][0]
        assert launch["justMyCode"] is False and launch["connect"] == {"host": "127.0.0.1", "port": port}
        assert ("127.0.0.1", port) in [s for socks in processes.listeners().values() for s in socks]

        dap = attach_and_stop_in_nova(cloud, port)
        dap.send("disconnect", terminateDebuggee=False)
        dap.sock.close()  # abruptly: the reply is not waited for

        # a client gone in the middle of its handshake (after a new adapter took over)
        rude = initialized_client(port)
        rude.send("attach", justMyCode=False)
        rude.sock.close()
        time.sleep(1)

        dap = attach_and_stop_in_nova(cloud, port)  # a third adapter, and all still works
        dap.response(dap.send("disconnect", terminateDebuggee=False))
        dap.sock.close()
        log = CloudPaths(cloud).log("nova").read_text()
        assert f"listening again on 127.0.0.1:{port}" in log and f"debugpy listens on 127.0.0.1:{port} again" in log
    finally:
        supervisor.restart(cloud, debug=None)


def test_pycharm_settrace_reaches_a_debug_server_and_runs_on_without_one(cloud):
    """A TCP listener in PyCharm's place checks pydevd's opening handshake: the IDE sends
    CMD_VERSION (501), pydevd answers with its version, the IDE sends CMD_RUN (101)."""
    (port,) = free_ports(1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    server.settimeout(120)
    seen = {}

    def ide():
        conn, _ = server.accept()
        conn.settimeout(30)
        conn.sendall(b"501\t1\t1.1\tUNIX\tID\n")
        data = b""
        while b"\n" not in data:
            data += conn.recv(4096)
        seen["reply"] = data.split(b"\n")[0].decode()
        conn.sendall(b"101\t3\t\n")
        seen["conn"] = conn

    thread, _ = in_thread(ide)
    try:
        supervisor.restart(cloud, debug="pycharm", debug_port=port)
        thread.join(30)
        cmd, seq, version = seen["reply"].split("\t")
        assert (cmd, seq) == ("501", "1") and version[0].isdigit(), seen
        token = novaclient(cloud, "")["token"]
        assert http(f"{settings(cloud).endpoint('nova')}/servers", token=token)[0] == 200
        assert "connected to PyCharm on 127.0.0.1" in CloudPaths(cloud).log("nova").read_text()
    finally:
        server.close()
        if "conn" in seen:
            seen["conn"].close()
    # nobody listening: a clear message in the log, and nova runs on
    supervisor.restart(cloud, debug="pycharm", debug_port=port)
    assert f"no PyCharm debug server listens on 127.0.0.1:{port}" in CloudPaths(cloud).log("nova").read_text()
    token = novaclient(cloud, "")["token"]
    assert http(f"{settings(cloud).endpoint('nova')}/servers", token=token)[0] == 200
    supervisor.restart(cloud, debug=None)
