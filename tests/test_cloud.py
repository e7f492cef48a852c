"""The mini-cloud, end to end: real Keystone, real nova from the lab's checkout, real
clients (python-novaclient and the `openstack` CLI from the lab venv). No mocks.

One cloud runs for the module (on free ports, so that a student's cloud on the default
ports is left alone); the tests run in file order and some restart it.
Set DEBUGLAB_TEST_LAB=/path/to/lab to run them against an existing lab.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from debuglab.cloud import config, supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.cloud.errors import CloudRunning, CloudStartFailed, CodeError, PortInUse
from debuglab.core import proc, processes
from debuglab.lab.workspace import Workspace
from tests._util import DEBUGLAB

pytestmark = pytest.mark.slow


def free_ports(n: int) -> list[int]:
    """Free ports below the kernel's ephemeral range (so no client connection can be
    holding one as its own local port when the cloud binds it)."""
    return list(processes.free_ports(range(n)).values())


@pytest.fixture(scope="module")
def cloud(lab_under_test):
    """A running cloud on free ports; stopped (and its processes checked gone) at the end."""
    ws = lab_under_test
    supervisor.stop(ws)
    keys = list(config.DEFAULT_PORTS)
    ports = dict(zip(keys, free_ports(len(keys) + 1)))
    state = supervisor.start(ws, ports=ports)
    yield ws
    supervisor.stop(ws)


def settings(ws: Workspace) -> config.CloudSettings:
    return supervisor.read_state(ws).settings


def lab_python(ws: Workspace, code: str, timeout: float = 120, user: str = "demo") -> dict:
    """Run a snippet with the lab venv's python (where the clients live); its last stdout
    line is JSON."""
    out = proc.run([ws.python, "-c", code], env=config.client_env(settings(ws), user), timeout=timeout).output
    return json.loads(out.strip().splitlines()[-1])


NOVACLIENT = """
import json, os, sys, time
from keystoneauth1 import loading, session
from novaclient import client
loader = loading.get_plugin_loader('password')
auth = loader.load_from_options(auth_url=os.environ['OS_AUTH_URL'], username=os.environ['OS_USERNAME'],
    password=os.environ['OS_PASSWORD'], project_name=os.environ['OS_PROJECT_NAME'],
    user_domain_name='Default', project_domain_name='Default')
sess = session.Session(auth=auth)
import novaclient
nova = client.Client(novaclient.API_MAX_VERSION.get_string(), session=sess)
result = {'token': sess.get_token()}
ACTION
print(json.dumps(result))
"""


def novaclient(ws: Workspace, action: str) -> dict:
    return lab_python(ws, NOVACLIENT.replace("ACTION", action))


def openstack(ws: Workspace, *args: str, user: str = "demo") -> str:
    return proc.run([ws.venv / "bin" / "openstack", *args], env=config.client_env(settings(ws), user),
                    timeout=120).output


def http(url: str, token: str | None = None, timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"X-Auth-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def session_pids(ws: Workspace) -> list[int]:
    state = supervisor.read_state(ws)
    return [pid for leader in state.pids.values() for pid in processes.session_members(leader)]


def listening_sockets(pids: list[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state the processes hold."""
    table = processes.listeners()
    return [sock for pid in pids for sock in table.get(pid, [])]


# --------------------------------------------------------------------------- tests


def test_every_service_runs_and_listens_on_loopback_only(cloud):
    rows = {row.name: row for row in supervisor.status(cloud)}
    assert set(rows) == set(config.SERVICES)
    assert all(row.running for row in rows.values()), rows
    assert all(row.listening for row in rows.values() if row.port), rows
    sockets = listening_sockets(session_pids(cloud))
    ports = settings(cloud).ports
    assert {port for _, port in sockets} >= set(ports.values())
    assert {addr for addr, _ in sockets} == {"127.0.0.1"}, sockets
    assert rows["n-sch"].pid == rows["n-api"].pid != rows["keystone"].pid


def test_novaclient_lists_and_creates_a_server_to_active(cloud):
    result = novaclient(cloud, """
server = nova.servers.create('nc-vm', image='155d900f-4e14-4e4c-a73d-069cbf4541e6', flavor='1', nics='none')
t0 = time.monotonic()
while server.status not in ('ACTIVE', 'ERROR') and time.monotonic() - t0 < 60:
    time.sleep(0.1)
    server = nova.servers.get(server.id)
result.update(id=server.id, status=server.status, took=time.monotonic() - t0,
              names=[s.name for s in nova.servers.list()], host=getattr(server, 'OS-EXT-SRV-ATTR:host', None))
""")
    assert result["status"] == "ACTIVE", result
    assert "nc-vm" in result["names"]
    assert result["token"]


BOOT_IN_GROUP = """
import uuid
group = nova.server_groups.create(name='rid-' + uuid.uuid4().hex[:8], policy='anti-affinity')
def boot(name):
    resp, body = nova.client.post('/servers', body={
        'server': {'name': name, 'imageRef': '155d900f-4e14-4e4c-a73d-069cbf4541e6', 'flavorRef': '1',
                   'networks': 'none'},
        'os:scheduler_hints': {'group': group.id}})
    server = nova.servers.get(body['server']['id'])
    t0 = time.monotonic()
    while server.status == 'BUILD' and time.monotonic() - t0 < 60:
        time.sleep(0.1)
        server = nova.servers.get(server.id)
    return {'id': server.id, 'status': server.status, 'request_id': resp.headers['x-openstack-request-id'],
            'compute_request_id': resp.headers['x-compute-request-id']}
result.update(first=boot('rid-first'), second=boot('rid-second'))
"""


def log_lines(ws: Workspace, service: str, needle: str) -> list[str]:
    return [line for line in CloudPaths(ws).log(service).read_text().splitlines() if needle in line]


def test_one_request_id_is_followed_through_the_per_service_logs(cloud):
    """As with journalctl -u devstack@n-api / n-cond / n-sch / n-cpu: each service's log
    has oslo.log's context ([req-… user project]), and nova's RPC context keeps the API
    request's id through conductor, scheduler and compute. Two boots into an
    anti-affinity group on the one compute: the first builds (n-cpu's lines), the second
    finds no host (the scheduler's filter line in n-sch, the conductor's in n-cond)."""
    result = novaclient(cloud, BOOT_IN_GROUP)
    first, second = result["first"], result["second"]
    assert (first["status"], second["status"]) == ("ACTIVE", "ERROR"), result
    for boot in (first, second):
        assert boot["request_id"].startswith("req-") and boot["request_id"] == boot["compute_request_id"], boot
        # the API's own request log line, in oslo.log's context format (request, then user and project)
        api = log_lines(cloud, "n-api", boot["request_id"])
        assert any(f"[None {boot['request_id']} " in line and '"POST /v2.1/servers"' in line for line in api), api

    built = log_lines(cloud, "n-cpu", first["request_id"])
    assert any(f"[instance: {first['id']}] Took" in line and "to build instance" in line for line in built), built
    assert not log_lines(cloud, "n-api", f"[instance: {first['id']}] Took")
    # placement gets nova's request id as the global one, before its own
    assert log_lines(cloud, "placement", f"[{first['request_id']} req-")

    filtered = log_lines(cloud, "n-sch", second["request_id"])
    assert any("ServerGroupAntiAffinityFilter returned 0 hosts" in line for line in filtered), filtered
    # nova.scheduler.utils, called by the conductor: the conductor's log, not the scheduler's
    failed = log_lines(cloud, "n-cond", second["request_id"])
    assert any("nova.scheduler.utils" in line and "No valid host was found" in line for line in failed), failed
    assert not any("nova.scheduler.utils" in line for line in filtered), filtered
    assert not log_lines(cloud, "n-cpu", second["request_id"])


def test_token_auth_is_real_and_a_bad_token_gets_401(cloud):
    api = settings(cloud).endpoint("nova")
    status, body = http(f"{api}/servers", token="not-a-token")
    assert status == 401, body
    status, _ = http(f"{api}/servers")
    assert status == 401
    token = novaclient(cloud, "")["token"]
    status, body = http(f"{api}/servers", token=token)
    assert status == 200, body
    assert "servers" in json.loads(body)


def test_openstack_cli_creates_a_server_by_image_name(cloud):
    out = openstack(cloud, "server", "create", "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.tiny",
                    "--nic", "none", "--wait", "-f", "json", "cli-vm")
    assert json.loads(out)["status"] == "ACTIVE"
    listed = json.loads(openstack(cloud, "server", "list", "-f", "json"))
    assert {"cli-vm", "nc-vm"} <= {s["Name"] for s in listed}
    images = json.loads(openstack(cloud, "image", "list", "-f", "json"))
    assert "cirros-0.6.3-x86_64-disk" in {i["Name"] for i in images}


def test_openrc_and_clouds_yaml_work_with_the_openstack_cli(cloud):
    paths = CloudPaths(cloud)
    out = subprocess.run(["bash", "-c", f"source {paths.openrc} admin admin && "
                          f"{cloud.venv / 'bin' / 'openstack'} project list -f value -c Name"],
                         capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert {"admin", "demo", "service"} <= set(out.stdout.split())
    out = subprocess.run([cloud.venv / "bin" / "openstack", "--os-cloud", "devstack", "flavor", "list",
                          "-f", "value", "-c", "Name"], capture_output=True, text=True, timeout=120,
                         cwd=cloud.root, env={"PATH": "/usr/bin:/bin", "OS_CLIENT_CONFIG_FILE": str(paths.clouds_yaml)})
    assert out.returncode == 0, out.stderr
    assert "m1.tiny" in out.stdout.split()


GLANCECLIENT = """
from glanceclient import Client
glance = Client('2', session=sess)
image = [i for i in glance.images.list() if i.name == 'cli-img'][0]
glance.images.update(image.id, min_disk=7, hw_lab='yes')
result.update(min_disk=glance.images.get(image.id)['min_disk'], hw_lab=glance.images.get(image.id).get('hw_lab'))
glance.images.update(image.id, remove_props=['hw_lab'])
result.update(removed='hw_lab' not in glance.images.get(image.id))
"""


def test_images_are_created_and_changed_as_on_devstack_and_nova_sees_min_disk(cloud, tmp_path):
    for old in openstack(cloud, "image", "list", "--name", "cli-img", "-f", "value", "-c", "ID", user="admin").split():
        openstack(cloud, "image", "delete", old, user="admin")  # a reused lab keeps images, as DevStack does
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(70000))
    created = json.loads(openstack(cloud, "image", "create", "--file", str(data), "--disk-format", "raw",
                                   "--container-format", "bare", "--min-disk", "3", "-f", "json", "cli-img",
                                   user="admin"))
    assert (created["status"], created["min_disk"], created["size"]) == ("active", 3, 70000), created
    # the openstack CLI's JSON-patch PATCH, and glanceclient's
    openstack(cloud, "image", "set", "--min-disk", "5", "--property", "hw_lab=x", "cli-img", user="admin")
    shown = json.loads(openstack(cloud, "image", "show", "-f", "json", "cli-img", user="admin"))
    assert shown["min_disk"] == 5 and shown["properties"]["hw_lab"] == "x", shown
    result = lab_python(cloud, NOVACLIENT.replace("ACTION", GLANCECLIENT), user="admin")
    assert (result["min_disk"], result["hw_lab"], result["removed"]) == (7, "yes", True), result
    saved = tmp_path / "back.raw"
    openstack(cloud, "image", "save", "--file", str(saved), "cli-img", user="admin")
    assert saved.read_bytes() == data.read_bytes()
    # nova reads the same images: a min_disk far above m1.small's 20 GiB is refused
    openstack(cloud, "image", "set", "--min-disk", "100000", "cli-img", user="admin")
    refused = subprocess.run([cloud.venv / "bin" / "openstack", "server", "create", "--image", "cli-img",
                              "--flavor", "m1.small", "--nic", "none", "never-vm"], capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, **config.client_env(settings(cloud), "admin")))
    assert refused.returncode != 0 and "minimum size specified in image metadata" in refused.stderr, refused
    # glance's rules: a public image is the admin's to change, a token is needed
    denied = subprocess.run([cloud.venv / "bin" / "openstack", "image", "set", "--min-disk", "1",
                             "cirros-0.6.3-x86_64-disk"], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, **config.client_env(settings(cloud), "demo")))
    assert denied.returncode != 0 and "403" in denied.stderr, denied
    status, _ = http(f"{settings(cloud).endpoint('image')}/v2/images")
    assert status == 401
    openstack(cloud, "image", "set", "--min-disk", "9", "cli-img", user="admin")


def token_of(ws: Workspace, user: str) -> str:
    """A project-scoped token of `user` (in the project of that name), from Keystone."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": config.PASSWORD}}},
        "scope": {"project": {"name": user, "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(f"{settings(ws).auth_url}/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers["X-Subject-Token"]


def request(method: str, url: str, token: str, body: bytes | None = None,
            ctype: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"X-Auth-Token": token, "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_files_that_hold_a_secret_are_the_owners_alone(cloud):
    """Passwords, tokens and databases, 0600 in folders of 0700."""
    import stat

    paths = CloudPaths(cloud)
    for folder in (paths.dir, paths.etc):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    secrets = [paths.openrc, paths.clouds_yaml, paths.settings, paths.dir / "keystone.sqlite",
               *paths.etc.glob("*.conf")]
    assert len(secrets) >= 7 and config.PASSWORD in paths.openrc.read_text()
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_keystone_serves_8_concurrent_clients_for_20_s_without_a_5xx(cloud):
    """At two concurrent clients Keystone answered 500 "database is locked"."""
    import concurrent.futures
    import uuid

    auth_url, admin = settings(cloud).auth_url, token_of(cloud, "admin")

    def call(method, path, body=None, token=admin):
        req = urllib.request.Request(f"{auth_url}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"X-Auth-Token": token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers

    def client(n):
        statuses, deadline = [], time.monotonic() + 20
        while time.monotonic() < deadline:
            name = f"dl-conc-{n}-{uuid.uuid4().hex[:8]}"
            code, body, _ = call("POST", "/projects", {"project": {"name": name, "domain_id": "default"}})
            statuses.append(code)
            project = json.loads(body)["project"]["id"] if code == 201 else None
            code, body, _ = call("POST", "/users", {"user": {"name": name, "password": "pw", "domain_id": "default",
                                                              "default_project_id": project}})
            statuses.append(code)
            user = json.loads(body)["user"]["id"] if code == 201 else None
            code, _, _ = call("POST", "/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": {
                "user": {"id": user, "password": "pw"}}}}})  # an unscoped token: last_active_at is written
            statuses.append(code)
            for kind, ident in (("users", user), ("projects", project)):
                if ident:
                    statuses.append(call("DELETE", f"/{kind}/{ident}")[0])
        return statuses

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [s for statuses in pool.map(client, range(8)) for s in statuses]
    assert len(results) > 40, len(results)
    errors = [s for s in results if s >= 500]
    assert not errors, f"{len(errors)} of {len(results)} requests got 5xx: {sorted(set(errors))}"
    assert set(results) <= {201, 204}, sorted(set(results))
    code, body, _ = call("GET", "/projects")
    assert not [p for p in json.loads(body)["projects"] if p["name"].startswith("dl-conc-")]  # nothing left behind


def test_restart_with_log_level_debug_writes_novas_debug_lines_and_info_ends_them(cloud):
    """Debug logs on demand."""
    env = {**os.environ, "COLUMNS": "200"}
    log = CloudPaths(cloud).logs / "n-api.log"

    def debug_lines_after_a_request(level: str) -> int:
        done = subprocess.run([DEBUGLAB, "cloud", "restart", "--dir", cloud.root, "--log-level", level],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        offset = log.stat().st_size
        novaclient(cloud, "result['flavors'] = len(nova.flavors.list())")
        return sum(" DEBUG " in line for line in log.read_text(errors="replace")[offset:].splitlines())

    try:
        assert debug_lines_after_a_request("debug") > 0
        assert "debug = True" in CloudPaths(cloud).local_conf.read_text()  # kept, as `cloud config set` would
        assert debug_lines_after_a_request("info") == 0
    finally:
        subprocess.run([DEBUGLAB, "cloud", "config", "unset", "--dir", cloud.root, "DEFAULT", "debug"], env=env)


def test_image_ids_from_a_request_never_reach_outside_the_image_folder(cloud, tmp_path):
    """A demo user once wrote and deleted files anywhere through the old image
    stand-in's ids; kept against real glance: its schema takes UUIDs only, and its file
    store keeps each image's data in the cloud's image folder."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    token, images = token_of(cloud, "demo"), f"{settings(cloud).endpoint('image')}/v2/images"
    escape = "../" * 12 + str(victim).lstrip("/")
    status, body = request("POST", images, token, json.dumps({"id": escape, "name": "v"}).encode())
    assert status == 400 and b"does not match" in body, (status, body)
    for quoted in (urllib.parse.quote(escape, safe=""), urllib.parse.quote(urllib.parse.quote(escape, safe=""), safe="")):
        for method, suffix, data in (("DELETE", "", None), ("PUT", "/file", b"owned"), ("GET", "/file", None)):
            status, _ = request(method, f"{images}/{quoted}{suffix}", token, data, "application/octet-stream")
            assert status in (400, 404), (method, quoted, status)
    assert victim.read_text() == "precious"
    # a well-formed id works end to end, and its data lands in the image folder
    good = str(uuid.uuid4())  # glance never gives a deleted image's id again
    status, _ = request("POST", images, token, json.dumps({"id": good, "name": "dl.good",
                                                           "disk_format": "raw", "container_format": "bare"}).encode())
    assert status == 201
    status, _ = request("PUT", f"{images}/{good}/file", token, b"x" * 1000, "application/octet-stream")
    assert status == 204
    assert (CloudPaths(cloud).dir / "images" / good).stat().st_size == 1000
    assert request("DELETE", f"{images}/{good}", token)[0] == 204
    assert not (CloudPaths(cloud).dir / "images" / good).exists()


@pytest.mark.parametrize("service, path", [("image", "/v2/images"), ("network", "/v2.0/networks")])
def test_glance_and_neutron_refuse_a_json_body_over_the_limit_without_echoing_it(cloud, service, path):
    """Glance answered a 20 MB image name with a 40 MB error page quoting it;
    both now answer 413 as nova does. Image data is not limited (the next test uploads)."""
    token = token_of(cloud, "demo")
    big = json.dumps({"name": "x" * (20 << 20)}).encode()
    status, body = request("POST", f"{settings(cloud).endpoint(service)}{path}", token, big)
    assert status == 413 and len(body) < 1000, (status, len(body))


def test_nova_lists_glances_images_with_filters_and_a_limit(cloud):
    """nova's /v2.1/images proxies glance's list: name and limit reach glance (the old
    fixture ignored them, and a backup's rotation then deleted other projects' images)."""
    token = token_of(cloud, "demo")
    api = settings(cloud).endpoint("nova")
    status, body = http(f"{api}/images?name=cirros-0.6.3-x86_64-disk&limit=1", token=token)
    assert status == 200, body
    assert [i["name"] for i in json.loads(body)["images"]] == ["cirros-0.6.3-x86_64-disk"]
    status, body = http(f"{api}/images?name=no-such-image", token=token)
    assert (status, json.loads(body)["images"]) == (200, [])
    status, body = http(f"{api}/images/detail?limit=1", token=token)
    assert len(json.loads(body)["images"]) == 1 and "images_links" in json.loads(body), body


def cli(ws: Workspace, *args: str, user: str = "demo") -> dict | list | str:
    out = openstack(ws, *args, "-f", "json", user=user) if "delete" not in args and "add" not in args \
        else openstack(ws, *args, user=user)
    return json.loads(out) if out.strip().startswith(("{", "[")) else out


def test_an_openstack_cli_session_as_on_devstack(cloud, tmp_path):
    """A DevStack session, every step against real neutron, glance and nova: a network of
    one's own, a security group rule, a floating IP from `public` on a server booted on
    `private` (its port bound, ACTIVE, with an address), an image uploaded from a file,
    a server snapshot seen SAVING then ACTIVE, and `image list --name`."""
    tag = str(time.time_ns())[-8:]  # a reused lab keeps what earlier runs made
    net = cli(cloud, "network", "create", f"net-{tag}")
    assert net["status"] == "ACTIVE" and net["provider:network_type"] is None or net["name"] == f"net-{tag}", net
    subnet = cli(cloud, "subnet", "create", "--network", f"net-{tag}", "--subnet-range", "192.168.77.0/24",
                 f"sub-{tag}")
    assert subnet["cidr"] == "192.168.77.0/24" and subnet["gateway_ip"] == "192.168.77.1", subnet
    rule = cli(cloud, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
               "--remote-ip", f"10.{int(tag) % 250}.0.0/16", "default")
    assert (rule["protocol"], rule["port_range_min"], rule["direction"]) == ("tcp", 22, "ingress"), rule
    fip = cli(cloud, "floating", "ip", "create", "public")
    assert fip["floating_ip_address"].startswith("172.24.4."), fip

    t0 = time.monotonic()
    server = cli(cloud, "server", "create", "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.tiny",
                 "--network", "private", "--wait", f"vm-{tag}")
    assert server["status"] == "ACTIVE", server
    [address] = server["addresses"]["private"]
    assert address.startswith("10.0.0."), server
    [port] = cli(cloud, "port", "list", "--server", f"vm-{tag}", "--long")
    assert port["Status"] == "ACTIVE" and port["Security Groups"], port
    bound = cli(cloud, "port", "show", port["ID"], user="admin")
    assert (bound["binding_vif_type"], bound["binding_host_id"]) == ("ovs", "debuglab"), bound
    # neutron told nova the port is up, as an agent's report makes it do on DevStack
    plugged = f"Creating event network-vif-plugged:{port['ID']} for instance {server['id']}"
    deadline = time.monotonic() + 20
    while not log_lines(cloud, "n-api", plugged):
        assert time.monotonic() < deadline, f"n-api.log never said {plugged!r}"
        time.sleep(0.2)
    cli(cloud, "server", "add", "floating", "ip", f"vm-{tag}", fip["floating_ip_address"])
    shown = cli(cloud, "server", "show", f"vm-{tag}")
    assert shown["addresses"]["private"] == [address, fip["floating_ip_address"]], shown
    assert cli(cloud, "floating", "ip", "show", fip["floating_ip_address"])["fixed_ip_address"] == address

    data = tmp_path / "disk.qcow2"
    data.write_bytes((CloudPaths(cloud).dir / "cirros.qcow2").read_bytes())
    image = cli(cloud, "image", "create", "--file", str(data), "--disk-format", "qcow2", "--container-format",
                "bare", f"img-{tag}")
    assert (image["status"], image["size"]) == ("active", data.stat().st_size), image
    assert [i["Name"] for i in cli(cloud, "image", "list", "--name", f"img-{tag}")] == [f"img-{tag}"]

    snap = cli(cloud, "server", "image", "create", "--name", f"snap-{tag}", f"vm-{tag}")
    assert snap["status"] in ("queued", "saving"), snap  # nova's API calls both SAVING
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = http(f"{settings(cloud).endpoint('nova')}/images/{snap['id']}", token=token_of(cloud, "demo"))
        statuses.append(json.loads(body)["image"]["status"])
        if statuses[-1] != "SAVING":
            break
        time.sleep(0.05)
    assert statuses[-1] == "ACTIVE", statuses
    assert cli(cloud, "image", "show", f"snap-{tag}")["size"] > 0
    assert cli(cloud, "server", "show", f"vm-{tag}")["status"] == "ACTIVE"
    cli(cloud, "server", "delete", "--wait", f"vm-{tag}")
    assert cli(cloud, "port", "list", "--device-id", server["id"]) == []


def test_a_resize_goes_to_verify_resize_and_is_confirmed_on_the_one_host(cloud):
    """DevStack sets allow_resize_to_same_host on a single node; without it every resize
    found no other host and the outside API suite skipped every resize test."""
    tag = str(time.time_ns())[-8:]
    server = cli(cloud, "server", "create", "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.tiny",
                 "--network", "private", "--wait", f"rs-{tag}")
    assert server["status"] == "ACTIVE", server
    try:
        openstack(cloud, "server", "resize", "--flavor", "m1.small", "--wait", f"rs-{tag}")
        shown = cli(cloud, "server", "show", f"rs-{tag}")
        assert shown["status"] == "VERIFY_RESIZE" and "m1.small" in str(shown["flavor"]), shown
        openstack(cloud, "server", "resize", "confirm", f"rs-{tag}")
        deadline = time.monotonic() + 60
        while (shown := cli(cloud, "server", "show", f"rs-{tag}"))["status"] != "ACTIVE":
            assert time.monotonic() < deadline and shown["status"] != "ERROR", shown
            time.sleep(0.5)
        assert "m1.small" in str(shown["flavor"]) and "m1.tiny" not in str(shown["flavor"]), shown
    finally:
        cli(cloud, "server", "delete", "--wait", f"rs-{tag}")


def test_servers_of_another_project_get_its_own_network_and_default_security_group(cloud):
    """A project other than demo (admin here) boots on a network of its own, and neutron
    gives it a `default` security group, as on DevStack."""
    tag = str(time.time_ns())[-8:]
    cli(cloud, "network", "create", f"adm-{tag}", user="admin")
    cli(cloud, "subnet", "create", "--network", f"adm-{tag}", "--subnet-range", "192.168.88.0/24",
        f"adm-sub-{tag}", user="admin")
    server = cli(cloud, "server", "create", "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.nano",
                 "--network", f"adm-{tag}", "--wait", f"adm-vm-{tag}", user="admin")
    assert server["status"] == "ACTIVE" and server["addresses"][f"adm-{tag}"][0].startswith("192.168.88."), server
    groups = cli(cloud, "security", "group", "list", "--project", "admin", user="admin")
    assert "default" in {g["Name"] for g in groups}, groups
    cli(cloud, "server", "delete", "--wait", f"adm-vm-{tag}", user="admin")


def test_the_network_service_answers_unknown_names_ids_filters_and_bad_tokens_like_neutron(cloud):
    unknown = subprocess.run([cloud.venv / "bin" / "openstack", "server", "create", "--network", "no-such-net",
                              "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.tiny", "never-net-vm"],
                             capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, **config.client_env(settings(cloud), "demo")))
    assert unknown.returncode != 0 and "No Network found for no-such-net" in unknown.stderr, unknown
    api = settings(cloud).endpoint("network")
    status, body = http(f"{api}/v2.0/networks", token="not-a-token")
    assert status == 401, body
    assert http(f"{api}/v2.0/networks")[0] == 401
    status, body = http(api)  # version discovery needs no token
    assert status == 200 and json.loads(body)["versions"][0]["id"] == "v2.0", body
    token = token_of(cloud, "demo")
    status, body = http(f"{api}/v2.0/networks/no-such-id", token=token)
    assert status == 404 and json.loads(body)["NeutronError"]["type"] == "NetworkNotFound", body
    status, body = http(f"{api}/v2.0/subnets?colour=blue", token=token)
    assert status == 400 and "['colour'] is invalid attribute for filtering" in body.decode(), body
    # demo sees its own network and the external one, not the admin's routers' ports
    status, body = http(f"{api}/v2.0/networks", token=token)
    names = {n["name"] for n in json.loads(body)["networks"]}
    assert {"private", "public"} <= names, names
    status, body = http(f"{api}/v2.0/ports?device_owner=network:router_gateway", token=token)
    assert json.loads(body)["ports"] == [], body


def test_hypervisor_uptime_and_a_console_log_as_long_as_a_cirros_boot(cloud):
    out = openstack(cloud, "--os-compute-api-version", "2.88", "hypervisor", "show", "debuglab", "-f", "json",
                    user="admin")
    assert json.loads(out)["uptime"], out  # 501 from the bare fake driver
    name = f"console-{time.time_ns()}"
    cli(cloud, "server", "create", "--image", "cirros-0.6.3-x86_64-disk", "--flavor", "m1.nano", "--network",
        "private", "--wait", name)
    log = openstack(cloud, "console", "log", "show", name)
    lines = log.rstrip("\n").splitlines()
    assert len(lines) > 40 and lines[-1] == f"{name} login: ", lines[-3:]
    assert any("udhcpc: lease of 10.0.0." in line for line in lines), lines
    # (`--lines N` is left to the console-log-lines bug, which the session's lab has planted)
    cli(cloud, "server", "delete", "--wait", name)


def test_every_service_log_is_free_of_errors_after_these_sessions(cloud):
    """The sessions above logged no ERROR in glance, neutron, Keystone or nova but the
    anti-affinity test's NoValidHost (a missing optional module, a failed upload or a
    refused binding all log one)."""
    errors = {}
    for service in ("nova", "g-api", "q-svc", "keystone"):
        text = CloudPaths(cloud).log(service).read_text()
        lines = text[text.rindex("===== debuglab cloud start"):].splitlines()
        for line in lines:
            if " ERROR " in line:
                errors.setdefault(f"{service}: {' '.join(line.split()[:5])}", []).append(line)
    assert [r[0] for r in errors.values() if not any("NoValidHost" in line for line in r)] == []


def test_start_while_running_says_so_and_starts_nothing(cloud):
    before = session_pids(cloud)
    with pytest.raises(CloudRunning, match="already runs"):
        supervisor.start(cloud, ports=settings(cloud).ports)
    assert session_pids(cloud) == before


def test_status_names_the_service_that_runs_a_file(cloud):
    assert supervisor.services_running_file(cloud, "nova/scheduler/manager.py") == ("nova/scheduler/manager.py", ["n-sch"])
    assert supervisor.services_running_file(cloud, str(cloud.checkout("nova") / "nova/compute/api.py"))[1] == ["n-api"]
    assert supervisor.services_running_file(cloud, "nova/compute/manager.py")[1] == ["n-cpu"]
    assert supervisor.services_running_file(cloud, "nova/objects/instance.py")[1] == ["n-api", "n-cond", "n-sch", "n-cpu"]


BOOT_ON_NET = """
server = nova.servers.create('NAME', image='155d900f-4e14-4e4c-a73d-069cbf4541e6', flavor='1',
                             nics=[{'net-id': 'NET'}])
t0 = time.monotonic()
while server.status == 'BUILD' and time.monotonic() - t0 < 60:
    time.sleep(0.1)
    server = nova.servers.get(server.id)
result.update(status=server.status, addresses=server.addresses)
"""


def boot_on_private(ws: Workspace, name: str) -> dict:
    private = json.loads(openstack(ws, "network", "show", "private", "-f", "json"))["id"]
    return novaclient(ws, BOOT_ON_NET.replace("NAME", name).replace("NET", private))


def addresses(ws: Workspace, name: str) -> dict:
    return novaclient(ws, f"result.update(a=nova.servers.find(name='{name}').addresses)")["a"]


def test_state_survives_restart_and_restart_loads_new_processes(cloud):
    net_vm = f"net-vm-{time.time_ns()}"  # unique: a reused lab keeps the servers of earlier runs
    on_net = boot_on_private(cloud, net_vm)
    assert on_net["status"] == "ACTIVE" and on_net["addresses"]["private"][0]["addr"], on_net
    before = {s["ID"]: (s["Name"], s["Status"]) for s in json.loads(openstack(cloud, "server", "list", "-f", "json"))}
    assert ("cli-vm", "ACTIVE") in before.values()
    old = supervisor.read_state(cloud).pids
    t0 = time.monotonic()
    supervisor.restart(cloud)
    took = time.monotonic() - t0
    new = supervisor.read_state(cloud).pids
    assert not set(old.values()) & set(new.values())
    assert not any(processes.alive(pid) for pid in old.values())
    after = json.loads(openstack(cloud, "server", "list", "-f", "json"))
    assert {s["ID"]: (s["Name"], s["Status"]) for s in after} == before
    assert took < 60
    image = json.loads(openstack(cloud, "image", "show", "-f", "json", "cli-img", user="admin"))
    assert (image["min_disk"], image["size"]) == (9, 70000), image  # images survive restart too
    # neutron's ports too: the old server keeps its address, a new one gets another
    assert addresses(cloud, net_vm) == on_net["addresses"]
    after_restart = boot_on_private(cloud, f"{net_vm}-2")
    assert after_restart["status"] == "ACTIVE", after_restart
    assert after_restart["addresses"]["private"][0]["addr"] != on_net["addresses"]["private"][0]["addr"]
    # the fake host kept its guests, as a hypervisor's outlive nova-compute: a server from
    # before the restart stops (the bare fake driver had forgotten it: the stop stuck)
    openstack(cloud, "server", "stop", net_vm)
    deadline = time.monotonic() + 60
    while json.loads(openstack(cloud, "server", "show", net_vm, "-f", "json"))["status"] != "SHUTOFF":
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(0.2)


def edit(ws: Workspace, path: str, old: str, new: str) -> Path:
    target = ws.checkout("nova") / path
    text = target.read_text()
    assert old in text
    target.write_text(text.replace(old, new, 1))
    return target


def restore(ws: Workspace, path: str) -> None:
    proc.run(["git", "-C", ws.checkout("nova"), "checkout", "--", path])


def test_a_syntax_error_makes_restart_fail_naming_file_and_line_and_the_cloud_stays_stopped(cloud):
    path = "nova/scheduler/utils.py"
    target = edit(cloud, path, "import collections\n", "import collections\ndef broken(:\n")
    try:
        pids = session_pids(cloud)
        with pytest.raises(CodeError) as info:
            supervisor.restart(cloud)
        assert f"{target}:" in str(info.value) and "SyntaxError" in str(info.value)
        line = target.read_text().splitlines().index("def broken(:") + 1
        assert f"{target}:{line}:" in str(info.value)
        assert supervisor.read_state(cloud) is None
        assert not any(processes.alive(pid) for pid in pids)
    finally:
        restore(cloud, path)
    supervisor.start(cloud)


def test_a_failed_start_shows_the_log_lines_and_leaves_no_process(cloud):
    path = "nova/scheduler/utils.py"
    edit(cloud, path, "import collections\n", "import collections\nraise RuntimeError('debuglab-test-boom')\n")
    try:
        supervisor.stop(cloud)
        before = {int(p) for p in os.listdir("/proc") if p.isdigit()}
        with pytest.raises(CloudStartFailed) as info:
            supervisor.start(cloud)
        assert "debuglab-test-boom" in str(info.value)
        assert "Traceback" in str(info.value)
        assert supervisor.read_state(cloud) is None
        leftovers = [p for p in {int(p) for p in os.listdir("/proc") if p.isdigit()} - before
                     if processes.alive(p) and supervisor._is_ours(p)]
        assert leftovers == []
    finally:
        restore(cloud, path)
    supervisor.start(cloud)


def test_a_crash_inside_a_request_gives_500_and_the_cloud_keeps_serving(cloud):
    path = "nova/api/openstack/compute/flavors.py"
    edit(cloud, path, "    def detail(self, req):\n", "    def detail(self, req):\n        raise ValueError('student bug')\n")
    try:
        supervisor.restart(cloud)
        token = novaclient(cloud, "")["token"]
        api = settings(cloud).endpoint("nova")
        status, _ = http(f"{api}/flavors/detail", token=token)
        assert status == 500
        status, _ = http(f"{api}/servers", token=token)
        assert status == 200
        status, _ = http(f"{api}/flavors/detail", token=token)
        assert status == 500
    finally:
        restore(cloud, path)
    supervisor.restart(cloud)


def test_a_port_in_use_is_named_and_nothing_starts(cloud):
    ports = settings(cloud).ports
    supervisor.stop(cloud)
    assert not [p for p, socks in processes.listeners().items() if any(port in ports.values() for _, port in socks)]
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", ports["placement"]))
    blocker.listen()
    try:
        with pytest.raises(PortInUse, match=f"port {ports['placement']} .*placement") as info:
            supervisor.start(cloud, ports=ports)
        assert f"held by pid {os.getpid()}" in str(info.value)
        assert "(--placement-port N)" in str(info.value)
        blocker.close()
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", ports["nova"]))
        blocker.listen()
        with pytest.raises(PortInUse) as info:
            supervisor.start(cloud, ports=ports)
        assert "(--port N)" in str(info.value) and "--nova-port" not in str(info.value)  # the option that exists
        assert supervisor.read_state(cloud) is None
    finally:
        blocker.close()
    supervisor.start(cloud, ports=ports)


def test_after_kill_9_of_nova_status_says_so_and_start_starts_cleanly(cloud):
    """`cloud start` said the cloud already runs, naming nova's dead pid, and
    `cloud status` exited 0 with half the cloud down."""
    state = supervisor.read_state(cloud)
    os.kill(state.pids["nova"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while processes.alive(state.pids["nova"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    env = {**os.environ, "COLUMNS": "200"}
    status = subprocess.run([DEBUGLAB, "cloud", "status", "--dir", cloud.root], capture_output=True, text=True, env=env)
    assert status.returncode == 1 and "not serving" in status.stdout and "n-api" in status.stdout, status.stdout
    started = subprocess.run([DEBUGLAB, "cloud", "start", "--dir", cloud.root], capture_output=True, text=True, env=env)
    assert started.returncode == 0 and "already runs" not in started.stderr, started.stdout + started.stderr
    assert not processes.alive(state.pids["keystone"])  # what was left of the old cloud went first
    status = subprocess.run([DEBUGLAB, "cloud", "status", "--dir", cloud.root], capture_output=True, text=True, env=env)
    assert status.returncode == 0, status.stdout


def test_reset_asks_naming_the_images_and_deletes_nothing_unless_told(cloud):
    for answer in ("", "n\n"):  # end of input, or no: the same exit code, nothing deleted
        asked = subprocess.run([DEBUGLAB, "cloud", "reset", "--dir", cloud.root], input=answer,
                               capture_output=True, text=True)
        assert asked.returncode == 1, (answer, asked.stdout, asked.stderr)
        assert "uploaded image" in asked.stdout + asked.stderr and "nothing was deleted" in asked.stdout
        assert supervisor.read_state(cloud) is not None and CloudPaths(cloud).dir.is_dir()


def test_stop_leaves_no_process_behind(cloud):
    pids = session_pids(cloud)
    assert len(pids) >= 2
    state = supervisor.stop(cloud)
    assert state is not None
    assert not any(processes.alive(pid) for pid in pids)
    assert not CloudPaths(cloud).pidfile.exists()
    assert supervisor.stop(cloud) is None
    assert not any(row.running for row in supervisor.status(cloud))
