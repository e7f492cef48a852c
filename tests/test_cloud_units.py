"""The mini-cloud's parts that need no running cloud: configuration and client files,
which service runs a file, the pidfile's liveness checks, the attach client against a
socket speaking remote-pdb's protocol, and the CLI's wiring."""

from __future__ import annotations

import configparser
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from debuglab.cloud import attach, config, hooks, localconf, supervisor
from debuglab.cloud.commands import attach as attach_command
from debuglab.cloud.commands import cloud
from debuglab.cloud.config import CloudPaths, CloudSettings
from debuglab.cloud.errors import CloudError
from debuglab.core import processes
from debuglab.lab.workspace import LAB_TOML, Workspace
from tests._util import DEBUGLAB


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A workspace shell: lab.toml and an (empty) nova checkout folder."""
    (tmp_path / LAB_TOML).write_text('[lab]\nbugs = []\n')
    (tmp_path / "stack" / "nova" / "etc" / "nova").mkdir(parents=True)
    return Workspace.open(tmp_path)


def test_configuration_files_point_at_the_lab_and_loopback(ws):
    settings = CloudSettings(ports={"keystone": 15000, "nova": 18774, "placement": 18778, "image": 19292,
                                    "network": 19696})
    paths = CloudPaths(ws)
    config.write_all(paths, settings)
    nova = configparser.ConfigParser(interpolation=None)
    nova.read(paths.etc / "nova.conf")
    assert nova["DEFAULT"]["transport_url"] == "fake:/"
    assert nova["DEFAULT"]["compute_driver"] == "fake.FakeDriverWithoutFakeNodes"
    assert nova["database"]["connection"].startswith(f"sqlite:///{ws.root}/cloud/")
    assert nova["keystone_authtoken"]["auth_url"] == "http://127.0.0.1:15000/v3"
    assert nova["api"]["auth_strategy"] == "keystone"
    # one of dogpile's own backends: nova's default oslo_cache.dict made dogpile load every
    # plugin, oslo_cache.memcache_pool (no python-memcached) too, and log an ERROR
    assert (nova["cache"]["enabled"], nova["cache"]["backend"]) == ("True", "dogpile.cache.memory")
    keystone = configparser.ConfigParser(interpolation=None)
    keystone.read(paths.etc / "keystone.conf")
    assert keystone["cache"]["backend"] == "dogpile.cache.memory"
    assert keystone["fernet_tokens"]["key_repository"] == str(ws.root / "cloud" / "fernet-keys")
    launcher = json.loads(paths.settings.read_text())
    assert (launcher["ports"]["nova"], launcher["ports"]["network"]) == (18774, 19696)
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


def test_sourcing_openrc_puts_the_lab_clients_on_path_once(ws):
    """DevStack's shell has `openstack` on PATH: `source openrc` alone must give it too,
    and sourcing it again must not grow PATH."""
    venv_bin = ws.root / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "openstack").write_text("#!/bin/sh\necho lab-openstack\n")
    (venv_bin / "openstack").chmod(0o755)
    config.write_client_files(CloudPaths(ws), CloudSettings())
    openrc = ws.root / "openrc"
    script = f"source {openrc}; source {openrc} admin admin; command -v openstack; echo \"$PATH\""
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(ws.root)})
    assert result.returncode == 0, result.stderr
    found, path = result.stdout.splitlines()
    assert found == str(venv_bin / "openstack")
    assert path.split(":") == [str(venv_bin), "/usr/bin", "/bin"]


@pytest.mark.parametrize("path, services", [
    ("nova/scheduler/manager.py", ["n-sch"]),
    ("nova/scheduler/filters/num_instances_filter.py", ["n-sch"]),
    ("nova/compute/api.py", ["n-api"]),
    ("nova/compute/manager.py", ["n-cpu"]),
    ("nova/conductor/manager.py", ["n-cond"]),
    ("nova/api/openstack/compute/views/flavors.py", ["n-api"]),
    ("nova/objects/instance.py", ["n-api", "n-cond", "n-sch", "n-cpu"]),
    ("nova/network/neutron.py", ["n-cpu"]),
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
        assert processes.alive(alive_not_ours.pid) and not processes.alive(dead.pid)
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
    assert set(cloud.commands) == {"start", "stop", "restart", "status", "logs", "reset", "config"}
    result = CliRunner().invoke(cloud, ["status", "--dir", str(ws.root), "--file", "nova/scheduler/manager.py"])
    assert result.exit_code == 1 and "not serving" in result.output, result.output  # a stopped cloud serves nothing
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


# --------------------------------------------------------------------------- local.conf (DevStack's post-config)

LOCAL_CONF = """[[local|localrc]]
ADMIN_PASSWORD=secret

[[post-config|$NOVA_CONF]]
# the scheduler bug needs these
[filter_scheduler]
enabled_filters = ComputeFilter,NumInstancesFilter

[[post-config|$PLACEMENT_CONF]]
[api]
auth_strategy = keystone
"""


def test_iniset_replaces_in_place_appends_to_its_section_and_keeps_comments():
    text = "[DEFAULT]\n# a comment\ndebug = False\n\n[api]\nauth_strategy = keystone\n"
    out = localconf.iniset(text, "DEFAULT", "debug", "True")
    assert out == text.replace("debug = False", "debug = True")
    out = localconf.iniset(out, "DEFAULT", "host", "lab1")
    assert out.splitlines()[:4] == ["[DEFAULT]", "# a comment", "debug = True", "host = lab1"]
    out = localconf.iniset(out, "filter_scheduler", "max_instances_per_host", "2")
    assert out.endswith("[filter_scheduler]\nmax_instances_per_host = 2\n") and "[api]\nauth_strategy" in out
    assert "host = lab1" not in localconf.iniset(out, "DEFAULT", "host", None)
    assert localconf.iniset(out, "nosuch", "x", None) == out


def test_local_conf_options_land_in_the_generated_nova_conf_and_survive_rewrites(ws):
    paths = CloudPaths(ws)
    paths.local_conf.write_text(LOCAL_CONF)
    localconf.set_option(paths.local_conf, "nova", "filter_scheduler", "max_instances_per_host", "2")
    localconf.set_option(paths.local_conf, "nova", "DEFAULT", "compute_driver", "fake.SmallFakeDriver")
    text = paths.local_conf.read_text()
    assert "[[local|localrc]]\nADMIN_PASSWORD=secret" in text and "# the scheduler bug needs these" in text
    for _ in range(2):  # every start rewrites the files; the overrides come back each time
        config.write_all(paths, CloudSettings())
        nova = configparser.ConfigParser(interpolation=None)
        nova.read(paths.etc / "nova.conf")
        assert nova["filter_scheduler"]["enabled_filters"] == "ComputeFilter,NumInstancesFilter"
        assert nova["filter_scheduler"]["max_instances_per_host"] == "2"
        assert nova["DEFAULT"]["compute_driver"] == "fake.SmallFakeDriver"  # replaced, not duplicated
        assert nova["DEFAULT"]["transport_url"] == "fake:/"
    assert (paths.etc / "nova.conf").read_text().count("compute_driver") == 1
    launcher = json.loads(paths.settings.read_text())
    assert {"file": "nova.conf", "section": "filter_scheduler", "option": "max_instances_per_host",
            "where": "local.conf:8"} in launcher["overrides"]
    localconf.set_option(paths.local_conf, "nova", "filter_scheduler", "max_instances_per_host", None)
    assert "max_instances_per_host" not in paths.local_conf.read_text()
    assert "[[post-config|$PLACEMENT_CONF]]\n[api]" in paths.local_conf.read_text()


def test_local_conf_reaches_glance_neutron_and_ml2_as_devstacks_variables_do(ws):
    paths = CloudPaths(ws)
    paths.local_conf.write_text("[[post-config|$GLANCE_API_CONF]]\n[DEFAULT]\nimage_member_quota = 7\n\n"
                                "[[post-config|$NEUTRON_CONF]]\n[DEFAULT]\nmax_routes = 5\n\n"
                                "[[post-config|$Q_PLUGIN_CONF_FILE]]\n[ml2_type_flat]\nflat_networks = public,lab\n")
    config.write_all(paths, CloudSettings())
    read = {}
    for name in ("glance-api.conf", "neutron.conf", "ml2_conf.ini"):
        read[name] = configparser.ConfigParser(interpolation=None)
        read[name].read(paths.etc / name)
    assert read["glance-api.conf"]["DEFAULT"]["image_member_quota"] == "7"
    assert read["glance-api.conf"]["DEFAULT"]["enabled_backends"] == "fs:file"  # the generated file stays
    assert read["neutron.conf"]["DEFAULT"]["max_routes"] == "5"
    assert read["ml2_conf.ini"]["ml2_type_flat"]["flat_networks"] == "public,lab"
    assert read["ml2_conf.ini"]["ml2"]["mechanism_drivers"] == "debuglab"
    # the mechanism driver neutron loads by that name: the module and its entry point
    plugins = paths.dir / "plugins"
    assert (plugins / "debuglab_ml2.py").read_text() == config.ML2_DRIVER.read_text()
    assert "debuglab = debuglab_ml2:AgentlessMechanismDriver" in \
        (plugins / "debuglab_ml2-1.0.dist-info" / "entry_points.txt").read_text()


@pytest.mark.parametrize("text, message", [
    ("[[post-config|$CINDER_CONF]]\n[DEFAULT]\ndebug = True\n", r"local.conf:1: .*CINDER_CONF.*\$NOVA_CONF"),
    ("[[post-config|$NOVA_CONF]]\ndebug = True\n", r"local.conf:2: an option before any \[section\]"),
    ("[[post-config|$NOVA_CONF]]\n[DEFAULT]\njust words\n", r"local.conf:3: not an option"),
])
def test_a_broken_local_conf_is_named_by_line_and_nothing_is_written(ws, text, message):
    paths = CloudPaths(ws)
    paths.local_conf.write_text(text)
    with pytest.raises(CloudError, match=message):
        config.write_all(paths, CloudSettings())
    assert not (paths.etc / "nova.conf").exists()
    with pytest.raises(CloudError, match=message):
        localconf.set_option(paths.local_conf, "nova", "DEFAULT", "debug", "True")
    assert paths.local_conf.read_text() == text


def test_cloud_config_commands_edit_local_conf(ws):
    runner = CliRunner()
    result = runner.invoke(cloud, ["config", "set", "--dir", str(ws.root), "filter_scheduler",
                                   "max_instances_per_host", "3"])
    assert result.exit_code == 0 and "next `debuglab cloud start`" in result.output, result.output
    result = runner.invoke(cloud, ["config", "show", "--dir", str(ws.root)])
    assert "max_instances_per_host" in result.output and "3" in result.output
    assert localconf.read(ws.root / "local.conf")[0].value == "3"
    result = runner.invoke(cloud, ["config", "set", "--dir", str(ws.root), "filter scheduler", "x", "1"])
    assert isinstance(result.exception, CloudError) and "'filter scheduler'" in str(result.exception)
    result = runner.invoke(cloud, ["config", "unset", "--dir", str(ws.root), "filter_scheduler",
                                   "max_instances_per_host"])
    assert result.exit_code == 0 and localconf.read(ws.root / "local.conf") == []


# --------------------------------------------------------------------------- the image service's rules


def test_each_breakpoint_listens_on_the_next_free_port_of_the_range():
    import random

    from debuglab.cloud.services import breakpoints

    while True:  # three free ports below the ephemeral range (no client connection lands there)
        first = random.randrange(20000, 32000)
        if all(processes.port_free(p) for p in range(first, first + 3)):
            break
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", first))
        taken = breakpoints.listen(first, count=3)  # `first` is held by the probe
        try:
            assert taken is not None and taken.getsockname() == ("127.0.0.1", first + 1)
            second = breakpoints.listen(first, count=3)
            assert second.getsockname()[1] == first + 2
            assert breakpoints.listen(first, count=3) is None  # the range is full
            second.close()
        finally:
            taken.close()


def _live_session(state: str) -> tuple[int, list]:
    """A port where a session is really waiting (listening) or attached (connected)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    if state == "waiting":
        return port, [listener]
    client = socket.create_connection(("127.0.0.1", port))
    server, _ = listener.accept()
    listener.close()
    return port, [client, server]


def test_attach_picks_the_oldest_waiting_session_of_a_live_process(tmp_path):
    def register(name, port, since, state="waiting", pid=None):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "id": name, "pid": pid or os.getpid(), "port": port, "thread": f"Thread-{port}", "thread_id": 1,
            "request_id": f"req-{port}", "file": "/lab/stack/nova/nova/api/x.py", "line": 3, "function": "f",
            "since": since, "state": state}))

    import os

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (a, keep_a), (b, keep_b), (c, keep_c), (d, keep_d) = (_live_session(s) for s in
                                                          ("waiting", "attached", "waiting", "waiting"))
    gone, _ = _live_session("waiting")  # its socket is closed: a debugger killed mid-session left it
    register("a", a, 200.0)
    register("b", b, 100.0, state="attached")
    register("c", c, 50.0, pid=dead.pid)  # its process is gone
    register("d", d, 300.0)
    register("e", gone, 10.0, state="attached")
    try:
        assert [s.port for s in attach.sessions(tmp_path)] == [b, a, d]
        assert attach.pick(tmp_path).port == a
        assert attach.pick(tmp_path, port=d).port == d
        assert attach.pick(tmp_path, port=b) is None  # someone is attached to it already
        assert attach.pick(tmp_path / "none") is None
    finally:
        for sock in (*keep_a, *keep_b, *keep_c, *keep_d):
            sock.close()


def test_attach_to_a_port_that_is_not_remote_pdb_says_what_answered(tmp_path):
    """`attach --port` on Keystone's port printed "attached to remote-pdb" and hung."""
    port, (listener,) = _live_session("waiting")

    def serve():
        conn, _ = listener.accept()
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        time.sleep(15)  # and never a prompt
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    out = io.StringIO()
    start = time.monotonic()
    with pytest.raises(CloudError, match="answered, but not as remote-pdb") as caught:
        attach.attach(port, out=out, commands=["p 1"])
    assert "HTTP/1.1 400 Bad Request" in str(caught.value) and time.monotonic() - start < 14
    assert "attached to remote-pdb" not in out.getvalue()
    listener.close()


def test_the_debugger_line_says_once_what_breakpoint_does_and_what_debug_would_change(ws, capsys):
    from debuglab.cloud.commands import print_cloud

    state = supervisor.CloudState(pids={}, ports=dict(config.DEFAULT_PORTS), breakpoint_port=4544)
    print_cloud(ws, state)
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("debugger: "))
    assert line.startswith("debugger: breakpoint() anywhere in stack/nova opens remote-pdb on 127.0.0.1:4544 "), line
    assert "no debugger" not in line and line.count("remote-pdb") == 1, line
    assert "`--debug pycharm` would also connect nova to PyCharm's debug server" in line, line
    assert "`--debug debugpy` would hand breakpoint() to VS Code instead" in line, line


@pytest.mark.parametrize("order", [supervisor.PROCESSES, tuple(reversed(supervisor.PROCESSES))])
def test_start_and_restart_name_every_service_up_whichever_comes_up_last(ws, order):
    """`cloud start` and `cloud restart` wait the same way; the service that happened to be
    last (q-svc at a start, nova at a restart) was left out of the steps."""
    import time

    paths = CloudPaths(ws)
    paths.dir.mkdir(parents=True)
    children = {name: subprocess.Popen(["sleep", "30"]) for name in supervisor.PROCESSES}

    def come_up():
        for name in order:
            time.sleep(0.1)
            (paths.dir / f"{name}.ready").write_text("")

    steps_seen: list[str] = []
    thread = threading.Thread(target=come_up)
    thread.start()
    try:
        supervisor._wait_ready(paths, children, dict.fromkeys(children, 0), 30, steps_seen.append)
    finally:
        thread.join()
        for child in children.values():
            child.kill()
            child.wait()
    assert steps_seen[:-1] == [f"{name} is up" for name in order], steps_seen
    assert steps_seen[-1] == "all services are up (keystone, nova, g-api, q-svc)", steps_seen


def test_printed_commands_quote_a_lab_path_with_a_space_and_an_umlaut(tmp_path, capsys):
    """Each command printed for a lab in `my lab ü` runs as printed in a shell."""
    import shlex

    from debuglab.cloud.commands import print_cloud
    from debuglab.lab.errors import WorkspaceError

    root = tmp_path / "my lab ü"
    (root / "stack" / "nova" / "etc" / "nova").mkdir(parents=True)
    (root / LAB_TOML).write_text('[lab]\nbugs = []\n')
    ws = Workspace.open(root)
    config.write_client_files(CloudPaths(ws), CloudSettings())
    print_cloud(ws, supervisor.CloudState(pids={}, ports=dict(config.DEFAULT_PORTS), breakpoint_port=4544))
    out = capsys.readouterr().out
    quoted = shlex.quote(str(root))
    assert f"source {quoted}/openrc (demo) or source {quoted}/openrc admin admin" not in out  # quote the whole path
    assert f"source {shlex.quote(str(root / 'openrc'))} (demo)" in out, out
    assert f"`debuglab attach --dir {quoted}`" in out, out
    line = f"source {shlex.quote(str(root / 'openrc'))} admin admin; echo $OS_USERNAME"
    assert subprocess.run(["bash", "-c", line], capture_output=True, text=True).stdout.strip() == "admin"
    with pytest.raises(WorkspaceError) as caught:
        Workspace.open(tmp_path / "no lab ü")
    assert f"`debuglab lab create --dir {shlex.quote(str(tmp_path / 'no lab ü'))}`" in str(caught.value)
    result = CliRunner().invoke(cloud, ["status", "--dir", str(root)], env={"COLUMNS": "300"})
    assert f"(`debuglab cloud restart --dir {quoted}`)" in result.output, result.output


def test_attach_list_names_a_file_by_its_path_in_the_checkout(ws):
    """`nova/scheduler/host_manager.py:394`, as `git diff` names it: not nova/nova/..."""
    import os

    registry = CloudPaths(ws).dir / "debug-sessions"
    registry.mkdir(parents=True)
    port, (listener,) = _live_session("waiting")
    (registry / "a.json").write_text(json.dumps({
        "id": "a", "pid": os.getpid(), "port": port, "thread": "Thread-1", "thread_id": 1, "request_id": "req-1",
        "file": str(ws.checkout("nova") / "nova" / "scheduler" / "host_manager.py"), "line": 394,
        "function": "get_filtered_hosts", "since": 1.0, "state": "waiting"}))
    with listener:
        result = CliRunner().invoke(attach_command, ["--dir", str(ws.root), "--list"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "1 session(s) waiting: 1 at nova/scheduler/host_manager.py:394" in result.output, result.output
    assert "nova/scheduler/host_manager.py:394 in get_filtered_hosts" in result.output, result.output
    assert "nova/nova/" not in result.output
    assert attach.short_path("/usr/lib/python3/dist-packages/eventlet/x.py", ws.root / "stack") == \
        "/usr/lib/python3/dist-packages/eventlet/x.py"


# --------------------------------------------------------------------------- the request threads' stack


ROOM_PROBE = """
import importlib.util, sys, threading
spec = importlib.util.spec_from_file_location("stackroom", sys.argv[1])
stackroom = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stackroom)
stackroom.stack_room_for_every_thread()

def deep(n):
    return deep(n - 1) if n else 0

def work():
    for _ in range(500):
        deep(int(sys.argv[2]))

thread = threading.Thread(target=work)  # no room of its own: stack_room_for_every_thread gives it one
thread.start()
thread.join()
"""


@pytest.mark.skipif(not shutil.which("strace"), reason="strace counts the mmap calls (.ci/run installs it)")
@pytest.mark.parametrize("depth", [300, 800])
def test_a_thread_above_the_stack_room_never_meets_a_chunk_edge(tmp_path, depth):
    """The room frame must leave most of its 256 KiB chunk free: 500 calls 300 and 800
    frames deep, in a thread, allocate no new 16 KiB frame chunk (with the room's locals
    made by an unpacking, its value stack doubled the frame and each call mmapped one)."""
    from debuglab.cloud.services import stackroom

    trace = tmp_path / "strace.txt"
    subprocess.run(["strace", "-f", "-e", "trace=mmap", "-o", trace, sys.executable, "-c", ROOM_PROBE,
                    stackroom.__file__, str(depth)], check=True, timeout=120)
    chunks = trace.read_text().count("mmap(NULL, 16384,")
    assert chunks < 20, f"{chunks} frame chunks of 16 KiB for 500 calls {depth} deep"


def test_each_request_runs_above_a_frame_that_gives_it_stack_room():
    """Every request thread of the cloud's WSGI servers starts with the launcher's
    with_stack_room frame (CPython 3.11's chunk-edge slowdown, services/stackroom.py): the app
    finds it below itself, holding at least STACK_ROOM_SLOTS locals, and the app's
    answer and its errors pass through it unchanged."""
    import urllib.error
    import urllib.request

    from debuglab.cloud.services import stackroom, wsgi

    seen = {}

    def app(environ, start_response):
        frame, names = sys._getframe(), []
        while frame is not None:
            names.append(frame.f_code.co_name)
            if frame.f_code.co_name == "with_stack_room":
                seen["slots"] = frame.f_code.co_nlocals
            frame = frame.f_back
        seen["names"] = names
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("a student's bug")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"served"]

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = wsgi.serve(app, port, "test")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"served"
        names = seen["names"]
        room = names.index("with_stack_room")  # under the app and the handler, over the thread's start
        assert names.index("app") < names.index("handle") < room
        assert "process_request_thread" in names[room + 1:room + 3] and names[-1] == "_bootstrap"
        assert names.count("with_stack_room") == 1  # one room: a second in its chunk leaves no room
        assert seen["slots"] >= stackroom.STACK_ROOM_SLOTS >= 15_000
        with pytest.raises(urllib.error.HTTPError) as failed:  # wsgiref's 500; the server lives on
            urllib.request.urlopen(f"http://127.0.0.1:{port}/boom", timeout=10)
        assert failed.value.code == 500
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"served"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_attach_to_a_port_out_of_range_is_exit_2_not_connection_refused(tmp_path, port):
    result = CliRunner().invoke(attach_command, ["--dir", str(tmp_path), "--port", port], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--port'" in result.output and "1<=x<=65535" in result.output, result.output
    assert "refused" not in result.output


def test_a_debug_port_that_another_lab_owns_is_refused_before_anything_starts(tmp_path):
    """`cloud start --debug remote-pdb --debug-port 4444` was accepted while another lab owned
    4444-4453; its status then claimed that range."""
    from debuglab.lab import port_registry

    labs = {}
    for name in ("mine", "other"):
        root = tmp_path / name
        root.mkdir()
        ports = port_registry.allocate(root)
        (root / "lab.toml").write_text('[lab]\nbugs = []\n[ports]\n'
                                       + "".join(f'"{k}" = {v}\n' for k, v in ports.items()))
        labs[name] = (root, ports)
    (mine, own), (other, theirs) = labs["mine"], labs["other"]
    for port in (theirs["remote-pdb"], theirs["remote-pdb"] + 5):
        out = subprocess.run([DEBUGLAB, "cloud", "start", "--dir", mine, "--debug", "remote-pdb", "--debug-port",
                              str(port)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stdout + out.stderr
        assert f"belongs to the lab at {other}" in out.stderr and str(own["remote-pdb"]) in out.stderr
        assert not (mine / "cloud" / "cloud.pid").exists()  # nothing was started
