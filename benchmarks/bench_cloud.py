"""The mini-cloud's speed: start and restart to the first authenticated 200 from
GET /v2.1/servers (and the ratio to a bare import of nova's API routes, the floor),
server create to ACTIVE, GET /v2.1/servers/detail with 50 servers (wall time, and the nova
process's CPU time per request, which a shared machine's load moves less), 50 servers
created at once (in the admin project, deleted after), resident memory.

    .venv/bin/python benchmarks/bench_cloud.py --lab lab [--runs 5] [--free-ports]

(--free-ports: the cloud runs on free ports, for a machine where another cloud holds the
default ones.) Start and restart times grow with the servers the lab keeps (nova-compute's
start-up asks placement for each instance's allocations): say how many there were.

It stops the lab's cloud if one runs, and leaves it running (with the benchmark's
servers in the demo project) at the end; `debuglab cloud reset` clears them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab import processes  # noqa: E402
from debuglab.cloud import config, supervisor  # noqa: E402
from debuglab.workspace import Workspace  # noqa: E402

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


def create_to_active(settings: config.CloudSettings, tok: str, name: str, count: int = 1) -> None:
    api = settings.endpoint("nova")
    body = {"server": {"name": name, "imageRef": IMAGE, "flavorRef": "42", "networks": "none",
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--free-ports", action="store_true",
                        help="run the cloud on free ports, not the default ones (another cloud may hold them)")
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    runs = args.runs

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
    show("cloud start to first authenticated 200 (< 6 s)", med, times)
    print(f"{'':<52} {med / floor:.1f}x the floor")

    def restart(i: int) -> None:
        supervisor.restart(ws)
        first_authenticated_200(supervisor.read_state(ws).settings)

    med, times = median_of(runs, restart)
    show("cloud restart to first authenticated 200 (< 6 s)", med, times)
    print(f"{'':<52} {med / floor:.1f}x the floor")

    settings = supervisor.read_state(ws).settings
    tok = token(settings)
    stamp = int(time.time())
    med, times = median_of(runs, lambda i: create_to_active(settings, tok, f"bench-{stamp}-{i}"))
    show("server create to ACTIVE (< 1.5 s)", med, times)

    api = settings.endpoint("nova")
    have = len(request("GET", f"{api}/servers", tok)[2].get("servers", []))
    if have < 50:
        create_to_active(settings, tok, f"bench50-{stamp}", count=50 - have)
    listed = request("GET", f"{api}/servers/detail", tok)[2]["servers"]
    for _ in range(5):  # warm up (the first requests after a start compile SQL and schemas)
        request("GET", f"{api}/servers/detail", tok)
    nova_pid = supervisor.read_state(ws).pids["nova"]
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

    admin = token(settings, "admin")  # in the admin project: the demo project keeps its 50
    t0 = time.perf_counter()
    create_to_active(settings, admin, f"bench-burst-{stamp}", count=50)
    print(f"{'50 servers created at once (min_count) to all ACTIVE':<52} {time.perf_counter() - t0:7.1f} s")
    _, _, burst = request("GET", f"{api}/servers?name=^bench-burst-{stamp}", admin)
    for server in burst.get("servers", []):
        request("DELETE", f"{api}/servers/{server['id']}", admin)
    print(f"{'resident memory of the whole cloud (< 600 MB)':<52} {rss_mb(ws):7.0f} MB")


if __name__ == "__main__":
    main()
