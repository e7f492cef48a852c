"""The mini-cloud's parts that need no running cloud: configuration and client files,
which service runs a file, the pidfile's liveness checks, the attach client against a
socket speaking remote-pdb's protocol, and the CLI's wiring."""

from __future__ import annotations

import configparser
import io
import json
import socket
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner

from debuglab.cloud import attach, config, hooks, supervisor
from debuglab.cloud.commands import attach as attach_command, cloud
from debuglab.cloud.config import CloudPaths, CloudSettings
from debuglab.cloud.errors import CloudError
from debuglab.workspace import LAB_TOML, Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A workspace shell: lab.toml and an (empty) nova checkout folder."""
    (tmp_path / LAB_TOML).write_text('[lab]\nbugs = []\n')
    (tmp_path / "stack" / "nova" / "etc" / "nova").mkdir(parents=True)
    return Workspace.open(tmp_path)


def test_configuration_files_point_at_the_lab_and_loopback(ws):
    settings = CloudSettings(ports={"keystone": 15000, "nova": 18774, "placement": 18778, "image": 19292})
    paths = CloudPaths(ws)
    config.write_all(paths, settings)
    nova = configparser.ConfigParser(interpolation=None)
    nova.read(paths.etc / "nova.conf")
    assert nova["DEFAULT"]["transport_url"] == "fake:/"
    assert nova["DEFAULT"]["compute_driver"] == "fake.FakeDriverWithoutFakeNodes"
    assert nova["database"]["connection"].startswith(f"sqlite:///{ws.root}/cloud/")
    assert nova["keystone_authtoken"]["auth_url"] == "http://127.0.0.1:15000/v3"
    assert nova["api"]["auth_strategy"] == "keystone"
    keystone = configparser.ConfigParser(interpolation=None)
    keystone.read(paths.etc / "keystone.conf")
    assert keystone["cache"]["backend"] == "dogpile.cache.memory"
    assert keystone["fernet_tokens"]["key_repository"] == str(ws.root / "cloud" / "fernet-keys")
    launcher = json.loads(paths.settings.read_text())
    assert launcher["ports"]["nova"] == 18774
    assert launcher["nova"]["api_paste"] == str(ws.checkout("nova") / "etc" / "nova" / "api-paste.ini")
    every_url = (paths.etc / "nova.conf").read_text() + (paths.etc / "placement.conf").read_text()
    assert "0.0.0.0" not in every_url and "localhost" not in every_url


def test_openrc_follows_devstacks_source_openrc_user_project(ws):
    settings = CloudSettings(ports=dict(config.DEFAULT_PORTS, keystone=15001))
    config.write_client_files(CloudPaths(ws), settings)
    script = f"source {ws.root / 'openrc'} admin admin; echo $OS_USERNAME $OS_PROJECT_NAME $OS_AUTH_URL"
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["admin", "admin", "http://127.0.0.1:15001/v3"]
    out = subprocess.run(["bash", "-c", f"source {ws.root / 'openrc'}; echo $OS_USERNAME $OS_PROJECT_NAME"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["demo", "demo"]
    clouds = (ws.root / "clouds.yaml").read_text()
    assert "devstack:" in clouds and "devstack-admin:" in clouds and "127.0.0.1:15001/v3" in clouds


@pytest.mark.parametrize("path, services", [
    ("nova/scheduler/manager.py", ["n-sch"]),
    ("nova/scheduler/filters/num_instances_filter.py", ["n-sch"]),
    ("nova/compute/api.py", ["n-api"]),
    ("nova/compute/manager.py", ["n-cpu"]),
    ("nova/conductor/manager.py", ["n-cond"]),
    ("nova/api/openstack/compute/views/flavors.py", ["n-api"]),
    ("nova/objects/instance.py", ["n-api", "n-cond", "n-sch", "n-cpu"]),
])
def test_status_file_names_the_service_running_it(ws, path, services):
    assert supervisor.services_running_file(ws, path) == (path, services)
    assert supervisor.services_running_file(ws, str(ws.checkout("nova") / path))[1] == services


def test_status_file_outside_nova_is_an_error(ws):
    with pytest.raises(CloudError, match="not code any service"):
        supervisor.services_running_file(ws, "README.rst")


def test_status_of_a_lab_without_a_cloud_shows_everything_stopped(ws):
    rows = supervisor.status(ws)
    assert {r.name for r in rows} == set(config.SERVICES)
    assert not any(r.running for r in rows)
    assert supervisor.stop(ws) is None


def test_a_stale_pidfile_is_not_a_running_cloud(ws):
    paths = CloudPaths(ws)
    paths.dir.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive_not_ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        paths.pidfile.write_text(json.dumps({"pids": {"keystone": dead.pid, "nova": alive_not_ours.pid},
                                             "ports": config.DEFAULT_PORTS}))
        assert supervisor.read_state(ws) is None  # neither is a launcher of this kit
        assert not paths.pidfile.exists()
        assert supervisor._alive(alive_not_ours.pid) and not supervisor._alive(dead.pid)
    finally:
        alive_not_ours.kill()
        alive_not_ours.wait()


class FakeRemotePdb:
    """A TCP peer speaking remote-pdb's side: location, prompt, answers; it keeps the
    connection open after `c`, as remote-pdb does."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.port = self.server.getsockname()[1]
        self.received: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        conn, _ = self.server.accept()
        conn.sendall(b"> /lab/stack/nova/nova/api/openstack/compute/flavors.py(162)detail()\r\n-> x = 1\r\n(Pdb) ")
        answers = {"p 1 + 1": b"2\r\n", "where": b"  /lab/stack/nova/nova/api/openstack/wsgi.py(1)f()\r\n"}
        buf = b""
        while True:
            data = conn.recv(1024)
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd = line.decode()
                self.received.append(cmd)
                if cmd == "c":
                    continue  # no prompt, connection left open
                conn.sendall(answers.get(cmd, b"*** NameError\r\n") + b"(Pdb) ")


def test_attach_client_relays_a_session_and_ends_at_continue():
    peer = FakeRemotePdb()
    typed = iter(["where", "p 1 + 1", "c"])
    out = io.StringIO()
    with attach.connect(peer.port) as sock:
        sent = attach.session(sock, lambda prompt: next(typed), out)
    assert sent == 3
    assert peer.received == ["where", "p 1 + 1", "c"]
    text = out.getvalue()
    assert "flavors.py(162)detail()" in text and "wsgi.py" in text and "2\n" in text
    assert "\r" not in text
    assert text.endswith("[remote-pdb session closed]\n")


def test_attach_without_a_session_says_how_to_get_one():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CloudError, match=f"no remote-pdb session on 127.0.0.1:{port}"):
        attach.connect(port)


def test_launch_json_for_vs_code(ws):
    launch = hooks.launch_json(ws, 5679)["configurations"][0]
    assert launch["request"] == "attach" and launch["type"] == "debugpy"
    assert launch["justMyCode"] is False
    assert launch["connect"] == {"host": "127.0.0.1", "port": 5679}
    assert launch["pathMappings"][0]["remoteRoot"] == str(ws.checkout("nova"))


def test_cli_group_has_the_issue_commands_and_status_prints_a_table(ws):
    assert set(cloud.commands) == {"start", "stop", "restart", "status", "logs", "reset"}
    result = CliRunner().invoke(cloud, ["status", "--dir", str(ws.root), "--file", "nova/scheduler/manager.py"])
    assert result.exit_code == 0, result.output
    assert "n-sch" in result.output and "stopped" in result.output
    assert "nova/scheduler/manager.py runs in: n-sch (pid not running)" in result.output
    result = CliRunner().invoke(cloud, ["stop", "--dir", str(ws.root)])
    assert result.exit_code == 0 and "not running" in result.output


def test_cli_errors_carry_the_kits_exit_codes(ws):
    from debuglab.cli import main

    if "cloud" not in main.commands:
        main.add_command(cloud)
        main.add_command(attach_command)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["attach", "--dir", str(ws.root), "--port", str(port)])
    assert result.exit_code == CloudError.exit_code
    assert "no remote-pdb session" in result.output
    result = CliRunner().invoke(main, ["cloud", "logs", "--dir", str(ws.root), "n-api"])
    assert result.exit_code == 1 and "no log yet" in result.output
