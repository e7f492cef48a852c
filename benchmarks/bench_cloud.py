"""The mini-cloud's speed: start and restart to the first authenticated 200 from
GET /v2.1/servers (and the ratio to a bare import of nova's API routes, the floor),
server create to ACTIVE with a port on DevStack's `private` (real neutron: port created,
bound by the ML2 driver, ACTIVE), GET /v2.1/servers/detail with 50 servers (wall time,
the nova process's CPU time per request, and its mmap/munmap calls per request, counted by
strace when it is installed), 50 servers created at once (in the admin project, without
ports: `private` is DevStack's /26, deleted after), resident memory of all four processes.

    .venv/bin/python benchmarks/bench_cloud.py --lab lab [--runs 5] [--free-ports]

(--free-ports: the cloud runs on free ports, for a machine where another cloud holds the
default ones.) It prints the conditions its figures hold under first: cores, the load
average before and after, the lab's python, the servers the lab keeps (nova-compute's
start asks placement for each one's allocations, so start grows with them), and other
clouds running on the machine. Wall times on a loaded machine grow with the load; the CPU
figures move much less.

It stops the lab's cloud if one runs, and leaves it running (with the benchmark's
servers in the demo project) at the end; `debuglab cloud reset` clears them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab.cloud import config, supervisor  # noqa: E402
from debuglab.core import processes  # noqa: E402
from debuglab.lab.workspace import Workspace  # noqa: E402

IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"


def request(method: str, url: str, token: str | None = None, body: dict | None = None,
            timeout: float = 60) -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "OpenStack-API-Version": "compute 2.90"}
    if token:
        headers["X-Auth-Token"] = token
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers), json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), {}
    except OSError:
        return 0, {}, {}


def token(settings: config.CloudSettings, user: str = "demo") -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": config.PASSWORD}}},
        "scope": {"project": {"name": user, "domain": {"name": "Default"}}}}}
    status, headers, _ = request("POST", f"{settings.auth_url}/auth/tokens", body=body)
    if status != 201:
        raise RuntimeError(f"Keystone said {status}")
    return headers["X-Subject-Token"]


def first_authenticated_200(settings: config.CloudSettings) -> None:
    tok = token(settings)
    deadline = time.monotonic() + 60
    while request("GET", f"{settings.endpoint('nova')}/servers", tok)[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("no 200 from GET /servers in 60 s")
        time.sleep(0.02)


def create_to_active(settings: config.CloudSettings, tok: str, name: str, count: int = 1,
                     network: str | None = None) -> None:
    api = settings.endpoint("nova")
    body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": "42",
                       "networks": [{"uuid": network}] if network else "none",
                       "min_count": count, "max_count": count}}
    status, _, reply = request("POST", f"{api}/servers", tok, body)
    if status != 202:
        raise RuntimeError(f"server create said {status}")
    deadline = time.monotonic() + 60 + 3 * count
    while True:
        _, _, listed = request("GET", f"{api}/servers/detail?name=^{name}", tok)
        states = [s["status"] for s in listed.get("servers", [])]
        if len(states) >= count and all(s == "ACTIVE" for s in states):
            return
        if "ERROR" in states or time.monotonic() > deadline:
            raise RuntimeError(f"servers {name}: {states}")
        time.sleep(0.02 if count == 1 else 0.5)  # a listing of many servers costs the cloud CPU


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (a figure machine load barely moves,
    unlike wall time on a shared machine)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(ws: Workspace) -> float:
    return supervisor.memory_mib(ws)


def free_ports() -> dict[str, int]:
    return processes.free_ports(list(config.DEFAULT_PORTS))


def conditions(ws: Workspace) -> None:
    """What the figures depend on, printed before them."""
    from debuglab.lab import port_registry

    version = subprocess.run([ws.python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    others = [lab for lab in port_registry.registered() if lab != str(ws.root.absolute())]
    running = [lab for lab in others if supervisor.read_state(Workspace.open(Path(lab))) is not None]
    print(f"conditions: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min) before, "
          f"lab python {version}, {servers_kept(ws)} servers in {ws.root}, "
          f"other clouds running: {', '.join(running) or 'none'}")


def servers_kept(ws: Workspace) -> int:
    import sqlite3

    path = ws.root / "cloud" / "nova_cell1.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        return db.execute("SELECT count(*) FROM instances WHERE deleted = 0").fetchone()[0]


def settle(pid: int, timeout: float = 60) -> float:
    """Wait until the process uses under 5% of a core over a second (the builds just
    made, their network events and cache updates, are over): seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - before < 0.05:
            break
    return time.monotonic() - t0


def mmap_calls_per_request(pid: int, call, requests: int = 5) -> float | None:
    """mmap + munmap calls of the nova process (all its threads) per request, from
    `strace -c -f -p`; None without strace."""
    import shutil
    import signal
    import tempfile

    if not shutil.which("strace"):
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        tracer = subprocess.Popen(["strace", "-c", "-f", "-e", "trace=mmap,munmap", "-o", out.name, "-p", str(pid)],
                                  stderr=subprocess.DEVNULL)
        time.sleep(1)  # attached to every thread
        for _ in range(requests):
            call()
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        calls = sum(int(line.split()[3]) for line in out.read().splitlines()
                    if line.strip().endswith(("mmap", "munmap")) and len(line.split()) >= 5)
    return calls / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--free-ports", action="store_true",
                        help="run the cloud on free ports, not the default ones (another cloud may hold them)")
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    runs = args.runs
    conditions(ws)

    floor, floor_times = median_of(runs, lambda i: subprocess.run(
        [ws.python, "-c", "import nova.api.openstack.compute.routes"], check=True,
        env={"OS_NOVA_DISABLE_EVENTLET_PATCHING": "1", "PATH": "/usr/bin:/bin"}))
    show("floor: import nova.api.openstack.compute.routes", floor, floor_times)

    supervisor.stop(ws)
    ports = free_ports() if args.free_ports else None

    def start(i: int) -> None:
        supervisor.start(ws, ports=ports)
        first_authenticated_200(supervisor.read_state(ws).settings)

    med, times = median_of(runs, start, setup=lambda i: supervisor.stop(ws))
    show("cloud start to first authenticated 200 (< 8 s)", med, times)
    print(f"{'':<52} {med / floor:.1f}x the floor")

    def restart(i: int) -> None:
        supervisor.restart(ws)
        first_authenticated_200(supervisor.read_state(ws).settings)

    med, times = median_of(runs, restart)
    show("cloud restart to first authenticated 200 (< 8 s)", med, times)
    print(f"{'':<52} {med / floor:.1f}x the floor")

    settings = supervisor.read_state(ws).settings
    tok = token(settings)
    stamp = int(time.time())
    private = request("GET", f"{settings.endpoint('network')}/v2.0/networks?name=private", tok)[2]["networks"][0]["id"]
    med, times = median_of(runs, lambda i: create_to_active(settings, tok, f"bench-{stamp}-{i}", network=private))
    show("server create to ACTIVE, a port on private (< 1.5 s)", med, times)
    for server in request("GET", f"{settings.endpoint('nova')}/servers?name=^bench-{stamp}-", tok)[2]["servers"]:
        request("DELETE", f"{settings.endpoint('nova')}/servers/{server['id']}", tok)  # private is a /26

    api = settings.endpoint("nova")
    have = len(request("GET", f"{api}/servers", tok)[2].get("servers", []))
    if have < 50:
        create_to_active(settings, tok, f"bench50-{stamp}", count=50 - have)
    listed = request("GET", f"{api}/servers/detail", tok)[2]["servers"]
    for _ in range(5):  # warm up (the first requests after a start compile SQL and schemas)
        request("GET", f"{api}/servers/detail", tok)
    nova_pid = supervisor.read_state(ws).pids["nova"]
    settled = settle(nova_pid)
    print(f"{'  nova idle before the listing (builds done)':<52} {settled:7.1f} s waited")
    samples = []
    cpu0 = cpu_seconds(nova_pid)
    for _ in range(max(20, runs)):
        t0 = time.perf_counter()
        status, _, _ = request("GET", f"{api}/servers/detail", tok)
        samples.append(time.perf_counter() - t0)
        assert status == 200
    cpu = (cpu_seconds(nova_pid) - cpu0) / len(samples)
    print(f"{f'GET /v2.1/servers/detail, {len(listed)} servers (p50 < 150 ms)':<52} "
          f"p50 {statistics.median(samples) * 1000:7.1f} ms   p90 "
          f"{sorted(samples)[int(len(samples) * 0.9) - 1] * 1000:.1f} ms   nova CPU {cpu * 1000:.0f} ms/request")
    mmaps = mmap_calls_per_request(nova_pid, lambda: request("GET", f"{api}/servers/detail", tok))
    if mmaps is not None:
        print(f"{'  mmap+munmap calls of nova per listing (strace)':<52} {mmaps:7.0f}"
              "   (hundreds: frames meet CPython 3.11's chunk edge, see services/stackroom.STACK_ROOM_SLOTS)")

    admin = token(settings, "admin")  # in the admin project: the demo project keeps its 50
    t0 = time.perf_counter()
    create_to_active(settings, admin, f"bench-burst-{stamp}", count=50)
    print(f"{'50 servers created at once (min_count) to all ACTIVE':<52} {time.perf_counter() - t0:7.1f} s")
    _, _, burst = request("GET", f"{api}/servers?name=^bench-burst-{stamp}", admin)
    for server in burst.get("servers", []):
        request("DELETE", f"{api}/servers/{server['id']}", admin)
    print(f"{'resident memory of the whole cloud (< 800 MB)':<52} {rss_mb(ws):7.0f} MB")
    print(f"{'load average after (1 min)':<52} {os.getloadavg()[0]:7.2f}")


if __name__ == "__main__":
    main()
