"""The DevStack technique lab (labs/devstack/02-remote-pdb.ipynb) executed end to end on the
`debuglab-devstack` kernel, its remote-pdb cells driving a real remote-pdb in a running
nova API.

A DevStack host's units cannot run here (no systemd, no journald), so the site stands in
for one: its stack folder holds the session lab's nova checkout, "restarting the unit"
devstack@n-api restarts the mini-cloud (which runs that checkout) with remote-pdb on the
unit's port, and its journal is the mini-cloud's nova.log. The notebook itself only uses
what a DevStack host gives it: DEBUGLAB_STACK, DEBUGLAB_UNITS, DEBUGLAB_RESTART,
DEBUGLAB_JOURNAL and DevStack's clouds.yaml.
"""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from debuglab import notebooks
from debuglab.cloud import supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.devstack_site import DevstackSite
from debuglab.workspace import Workspace
from tests.conftest import stand_in_devstack
from tests.test_labs_cloud import LabRun, git_status, project_id, source_line
from tests.test_notebooks import nb_cloud  # noqa: F401 (the module's cloud)

pytestmark = pytest.mark.slow

LAB = Path(__file__).resolve().parents[1] / "labs" / "devstack" / "02-remote-pdb.ipynb"
SERVERS_PY = "nova/api/openstack/compute/servers.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stand_in_site(ws: Workspace, folder: Path) -> DevstackSite:
    """A DevStack host over the session lab whose devstack@n-api is the mini-cloud (see the
    module's docstring)."""
    port = free_port()
    restart = (f'echo {{units}} >> {folder / "restarts.log"} && "{notebooks.debuglab_cli()}" cloud restart '
               f'--dir "{ws.root}" --debug remote-pdb --debug-port {port}')
    return stand_in_devstack(ws, folder, services=(("devstack@n-api", port), ("devstack@n-sch", 4448)),
                             restart_command=restart,
                             journal_command=f'tail -n {{lines}} "{CloudPaths(ws).log("nova")}"')


@contextmanager
def devstack_notebook(site: DevstackSite, path: Path, monkeypatch):
    from nbclient import NotebookClient

    notebooks.register_kernel(site)
    for key, value in notebooks.jupyter_env(site).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == notebooks.DEVSTACK_KERNEL_NAME
    client = NotebookClient(nb, kernel_name=notebooks.DEVSTACK_KERNEL_NAME, timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        yield LabRun(client, nb)


def test_devstack_remote_pdb_lab_restarts_the_unit_and_attaches_on_its_port(nb_cloud, monkeypatch, tmp_path):
    ws = nb_cloud
    site = stand_in_site(ws, tmp_path)
    port = dict(site.services)["devstack@n-api"]
    nova = ws.checkout("nova")
    servers_py = nova / SERVERS_PY
    before_text, before_status = servers_py.read_text(), git_status(nova)
    demo, admin = project_id(ws, "demo"), project_id(ws, "admin")
    try:
        with devstack_notebook(site, LAB, monkeypatch) as lab:
            lab.run_until("ds-rpdb-cleanup")
            t = lab.text
            assert f"devstack@n-api opens remote-pdb on 127.0.0.1:{port}" in t["ds-rpdb-setup"]
            server_id = re.search(r"server lab02-vm: (\S+) is ACTIVE", t["ds-rpdb-create"]).group(1)
            # the unit was restarted through the site's restart command, once, by its name
            assert (tmp_path / "restarts.log").read_text().split() == ["devstack@n-api"]
            assert "devstack@n-api answers again" in t["ds-rpdb-restart"], t["ds-rpdb-restart"]
            assert supervisor.read_state(ws).debug == "remote-pdb"
            # the journal shows where the session waits, on the unit's port
            assert f"127.0.0.1:{port}" in t["ds-rpdb-journal"], t["ds-rpdb-journal"]
            # stopped in show(), attached on the unit's own port
            assert re.search(r"servers\.py\(\d+\)show\(\)\n-> context = req\.environ\['nova\.context'\]",
                             t["ds-rpdb-client"]), t["ds-rpdb-client"]
            assert "show()" in t["ds-rpdb-where"]
            ctx = t["ds-rpdb-context"]
            assert "('demo', 'demo')" in ctx and f"'{demo}'" in ctx, ctx
            can_line = source_line(servers_py, "    def show(self, req, id):", "context.can(")
            assert f"servers.py({can_line})show()" in t["ds-rpdb-db"], t["ds-rpdb-db"]
            assert f"('{server_id}', 'active'," in t["ds-rpdb-db"]
            assert "the request completed: lab02-vm ACTIVE" in t["ds-rpdb-continue"]
            assert "the admin's request completed: True" in t["ds-rpdb-exercise-session"]
            assert "✗ swapped" in lab.answer(f'CONTEXT_PROJECT_ID = "{demo}"\nSERVER_PROJECT_ID = "{admin}"\n'
                                            "ALLOWED = True")
            assert "✓ right" in lab.answer(f'CONTEXT_PROJECT_ID = "{admin}"\nSERVER_PROJECT_ID = "{demo}"\n'
                                          "ALLOWED = True")
            cleanup = lab.run("ds-rpdb-cleanup")
            assert "servers.py is back as it was" in cleanup, cleanup
        assert servers_py.read_text() == before_text and git_status(nova) == before_status
        assert (tmp_path / "restarts.log").read_text().split() == ["devstack@n-api"] * 2
    finally:  # never leave the breakpoint behind, whatever failed
        if servers_py.read_text() != before_text:
            servers_py.write_text(before_text)
        supervisor.restart(ws, debug=None)
