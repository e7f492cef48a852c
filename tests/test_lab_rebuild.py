"""`lab create --force` on a lab whose cloud runs: the cloud is stopped before
the folder is replaced and started again from the new lab, on the same ports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from debuglab.cloud import config, supervisor
from debuglab.core import processes
from debuglab.lab import workspace
from tests._util import DEBUGLAB

pytestmark = pytest.mark.slow


def test_force_while_the_cloud_runs_restarts_it_from_the_new_lab(tmp_path):
    # a lab of its own (from the cache `debuglab up` filled), so the session's lab keeps running
    ws = workspace.create(tmp_path / "lab", ["num-instances-off-by-one"])
    ports = processes.free_ports(list(config.DEFAULT_PORTS))
    before = supervisor.start(ws, ports=ports)
    try:
        built = subprocess.run([DEBUGLAB, "lab", "create", "--force", "--dir", ws.root, "--bugs",
                                "num-instances-off-by-one"], capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stdout + built.stderr
        assert "stopping the lab's cloud" in built.stderr and "starting the cloud again" in built.stderr
        for pid in before.pids.values():
            assert not processes.alive(pid), "the old cloud outlived the rebuild (orphaned)"
        after = supervisor.read_state(ws)
        assert after is not None and after.ports == ports
        assert all(s.running and s.listening is not False for s in supervisor.status(ws)), supervisor.status(ws)
        for pid in after.pids.values():  # it runs the new lab's code, from a folder that exists
            assert Path(f"/proc/{pid}/cwd").resolve() == (ws.root / "cloud").resolve()
        status = subprocess.run([DEBUGLAB, "cloud", "status", "--dir", ws.root], capture_output=True, text=True)
        assert status.returncode == 0 and "running" in status.stdout, status.stdout + status.stderr
    finally:
        supervisor.stop(ws)
    assert all(processes.port_free(p) for p in ports.values())
