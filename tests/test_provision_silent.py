"""SSH to hosts that misbehave never hangs and never prints a traceback:
a host that takes the TCP connection but never says a word, and a key file that is missing.
The silent host is a real listening socket here; the ssh client is the real OpenSSH one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests._util import DEBUGLAB


@pytest.fixture
def silent_host():
    """127.0.0.1:PORT accepts connections and then says nothing, ever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def inventory(tmp_path: Path, port: int, key: Path | None = None) -> Path:
    known = tmp_path / "known_hosts"
    known.write_text("")
    key_line = f'key_file = "{key}"\n' if key else ""
    path = tmp_path / "class.toml"
    path.write_text(f'[class]\nbugs = "all"\nknown_hosts = "{known}"\n{key_line}connect_timeout = 3\n'
                    f'\n[[host]]\naddress = "root@127.0.0.1:{port}"\nprofile = "lab"\nstudent = "quiet"\n')
    return path


def run(*args, timeout=90):
    return subprocess.run([DEBUGLAB, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "250"})


def test_provision_to_a_silent_host_says_so_in_one_line_and_builds_nothing(silent_host, tmp_path):
    cache = tmp_path / "cache"
    start = time.monotonic()
    result = run("provision", inventory(tmp_path, silent_host), "--dry-run", timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "does not speak SSH" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr and "No existing session" not in result.stdout
    assert "wheelhouse" not in result.stderr  # the hosts were checked first: nothing was built for none


def test_a_tunnel_to_a_silent_host_gives_up_at_the_connect_timeout(silent_host, tmp_path):
    if not shutil.which("ssh"):
        pytest.skip("needs the OpenSSH client")
    result = run("tunnel", "quiet", "-i", inventory(tmp_path, silent_host), "--run", timeout=90)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_a_missing_key_file_is_named(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        missing = tmp_path / "no_such_key"
        result = run("provision", inventory(tmp_path, server.getsockname()[1], missing), "--dry-run", timeout=120)
    finally:
        server.close()
    assert result.returncode != 0
    assert f"the key {missing} does not exist" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
