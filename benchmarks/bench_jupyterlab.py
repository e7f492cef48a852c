"""JupyterLab as a service of the lab: `debuglab notebook start` until it answers with the
lab's token, the ratio to a bare jupyter-lab launched by hand until it answers (the
floor), `debuglab notebook stop` with one running kernel until no process is left, and a
second `debuglab notebook start` that finds it running.

    .venv/bin/python benchmarks/bench_jupyterlab.py --lab lab [--runs 5] [--port 18888]

It stops the lab's JupyterLab if one runs, and leaves it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import median_of, show  # noqa: E402

from debuglab.core import processes  # noqa: E402
from debuglab.core.kit import Kit  # noqa: E402
from debuglab.lab.workspace import Workspace  # noqa: E402
from debuglab.notebooks import jupyterlab

DEBUGLAB = str(Path(sys.executable).parent / "debuglab")
_bare: dict[str, subprocess.Popen] = {}


def cli(*args: str, check: bool = True) -> None:
    subprocess.run([DEBUGLAB, *args], check=check, capture_output=True)


def bare(ws: Workspace, port: int) -> None:
    """The floor: the same jupyter-lab command, no debuglab, polled until it answers."""
    argv, env = jupyterlab.jupyterlab_command(ws, Kit.default(), port)
    server = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    token = jupyterlab.lab_token(ws)
    while not jupyterlab._answers(port, token):
        time.sleep(0.05)
    _bare["server"] = server


def stop_bare(_: int) -> None:
    server = _bare.pop("server")
    processes.kill_session(server.pid, 15)
    server.wait()


def with_kernel(ws: Workspace, port: int) -> None:
    token = jupyterlab.lab_token(ws)
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernels", data=b'{"name": "debuglab"}',
                                 method="POST", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        json.loads(resp.read())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=18888)
    args = parser.parse_args()
    ws = Workspace.open(args.lab)
    root, port = str(ws.root), str(args.port)
    jupyterlab.stop(ws)

    floor, floor_times = median_of(args.runs, lambda i: bare(ws, args.port),
                                   lambda i: stop_bare(i) if _bare else None)
    stop_bare(0)
    show("bare jupyter-lab until it answers (floor)", floor, floor_times)

    def start(i: int) -> None:
        cli("notebook", "start", "--dir", root, "--port", port)

    def stop_it(i: int) -> None:
        cli("notebook", "stop", "--dir", root)

    med, times = median_of(args.runs, start, stop_it)
    show("debuglab notebook start until it answers", med, times)
    print(f"{'  ratio to the floor':<52} {med / floor:.2f}x")

    again, again_times = median_of(args.runs, lambda i: cli("notebook", "start", "--dir", root, check=False))
    show("debuglab notebook start, already running", again, again_times)

    def running_with_a_kernel(i: int) -> None:
        if i:  # the first run stops the server the runs above left running
            start(i)
        with_kernel(ws, args.port)

    stopped, stop_times = median_of(args.runs, stop_it, running_with_a_kernel)
    show("debuglab notebook stop, one kernel running", stopped, stop_times)
    assert jupyterlab.read_state(ws) is None and processes.port_free(args.port)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
