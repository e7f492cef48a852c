"""Each lab owns its ports: a block no other lab of the machine holds, kept in
lab.toml; two labs run side by side, a breakpoint() in each stops on its own lab's port."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from debuglab.cloud import supervisor
from debuglab.core import processes
from debuglab.lab import port_registry, workspace
from tests._util import DEBUGLAB
from tests.test_cloud import edit, http, novaclient, restore, settings


@pytest.fixture
def registry(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBUGLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def fake_lab(root: Path, ports: dict | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    table = "".join(f'"{k}" = {v}\n' for k, v in (ports or {}).items())
    (root / "lab.toml").write_text("[lab]\nbugs = []\n" + (f"[ports]\n{table}" if ports else ""))
    return root


def test_two_labs_get_blocks_that_never_overlap_and_a_port_names_its_lab(registry):
    first = port_registry.allocate(registry / "a")
    fake_lab(registry / "a", first)
    second = port_registry.allocate(registry / "b")
    fake_lab(registry / "b", second)
    assert port_registry._used(first).isdisjoint(port_registry._used(second))
    assert port_registry.holder(second["nova"]) == str(registry / "b")
    assert port_registry.holder(first["remote-pdb"] + 5) == str(registry / "a")  # the whole breakpoint range
    assert port_registry.of(registry / "b") == second
    # a rebuilt lab keeps its own; a lab that is gone frees its block
    assert port_registry.allocate(registry / "b", keep=second) == second
    (registry / "a" / "lab.toml").unlink()
    assert port_registry.holder(first["nova"]) is None
    assert port_registry.allocate(registry / "c") == first or port_registry.allocate(registry / "c")


def test_a_port_someone_listens_on_is_not_given_out(registry):
    import socket

    would = port_registry.allocate(registry / "probe")  # the block it would give (no lab.toml: forgotten again)
    taken = socket.socket()
    taken.bind(("127.0.0.1", would["placement"]))
    taken.listen()
    try:
        ports = port_registry.allocate(registry / "a")
    finally:
        taken.close()
    assert ports["placement"] != would["placement"] and port_registry._used(ports).isdisjoint({would["placement"]})


@pytest.mark.slow
def test_two_labs_side_by_side_each_with_a_breakpoint_on_its_own_port(lab, tmp_path):
    """--debug-port was ignored without --debug and every lab fell back to 4444."""
    other = workspace.create(tmp_path / "other", ["num-instances-off-by-one"])
    labs = [lab, other]
    assert port_registry._used(lab.ports).isdisjoint(port_registry._used(other.ports))
    flavors = "nova/api/openstack/compute/flavors.py"
    detail = "    def detail(self, req):\n"
    try:
        for ws in labs:
            supervisor.stop(ws)
            # as at a lab's first start (the session's lab was started on other ports by other tests)
            (ws.root / "cloud" / "options.json").unlink(missing_ok=True)
            supervisor.start(ws)  # no ports given: the lab's own
            assert settings(ws).ports["nova"] == ws.ports["nova"]
            edit(ws, flavors, detail, detail + "        breakpoint()\n")
            supervisor.restart(ws)
            status = subprocess.run([DEBUGLAB, "cloud", "status", "--dir", ws.root], capture_output=True, text=True,
                                    env={**os.environ, "COLUMNS": "200"})
            assert f"remote-pdb on 127.0.0.1:{ws.ports['remote-pdb']}" in status.stdout, status.stdout
        for ws in labs:
            token = novaclient(ws, "")["token"]
            stopped = threading.Thread(target=http, args=(f"{settings(ws).endpoint('nova')}/flavors/detail",),
                                       kwargs={"token": token, "timeout": 120}, daemon=True)
            stopped.start()
            driven = subprocess.run([DEBUGLAB, "attach", "--dir", ws.root, "--wait", "60", "--command",
                                     "p __file__"], capture_output=True, text=True, timeout=180)
            assert driven.returncode == 0, driven.stdout + driven.stderr
            assert f"127.0.0.1:{ws.ports['remote-pdb']}" in driven.stdout  # its own lab's port
            assert str(ws.checkout("nova")) in driven.stdout  # stopped in its own lab's code
            stopped.join(60)
    finally:
        for ws in labs:
            restore(ws, flavors)
            supervisor.stop(ws)
    assert all(processes.port_free(p) for ws in labs for p in ws.ports.values())
