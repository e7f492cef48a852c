"""The DevStack technique labs (labs/devstack/02-remote-pdb.ipynb, 03-ide-debuggers.ipynb)
executed end to end on the `debuglab-devstack` kernel, their debugger cells driving a real
remote-pdb, pydevd and debugpy in a running nova API.

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

from debuglab.cloud import supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, kernel
from debuglab.notebooks.devstack import DevstackSite
from tests._util import stand_in_devstack
from tests.test_labs_cloud import LabRun, git_status, project_id, source_line
from tests.test_notebooks import cell, nb_cloud  # noqa: F401 (nb_cloud: the module's cloud)

pytestmark = pytest.mark.slow

LABS = Path(__file__).resolve().parents[1] / "labs" / "devstack"
LAB = LABS / "02-remote-pdb.ipynb"
SERVERS_PY = "nova/api/openstack/compute/servers.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stand_in_site(ws: Workspace, folder: Path, *, remote_pdb: bool = True) -> DevstackSite:
    """A DevStack host over the session lab whose devstack@n-api is the mini-cloud (see the
    module's docstring), with remote-pdb on the unit's port as the drop-in gives it, or
    (remote_pdb=False) no debugger of the kit's: the code the lab edits brings its own."""
    port = free_port()
    debugger = f"--debug remote-pdb --debug-port {port}" if remote_pdb else "--no-debug"
    restart = (f'echo {{units}} >> {folder / "restarts.log"} && "{kernel.debuglab_cli()}" cloud restart '
               f'--dir "{ws.root}" {debugger}')
    return stand_in_devstack(ws, folder, services=(("devstack@n-api", port), ("devstack@n-sch", 4448)),
                             restart_command=restart,
                             journal_command=f'tail -n {{lines}} "{CloudPaths(ws).log("nova")}"')


@contextmanager
def devstack_notebook(site: DevstackSite, path: Path, monkeypatch):
    from nbclient import NotebookClient

    kernel.register_kernel(site)
    for key, value in kernel.jupyter_env(site).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == content.DEVSTACK_KERNEL_NAME
    client = NotebookClient(nb, kernel_name=content.DEVSTACK_KERNEL_NAME, timeout=300,
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


def test_devstack_ide_lab_stops_n_api_in_pycharm_and_vs_code_through_code_the_lab_adds(nb_cloud, monkeypatch,
                                                                                        tmp_path):
    """The stand-ins for the IDEs are the notebook's own (a pydevd debug server, a DAP
    client): the test checks what they show against the checkout and Keystone, and that
    n-api really ran the lines the lab added (it connected, it listened)."""
    ws = nb_cloud
    site = stand_in_site(ws, tmp_path, remote_pdb=False)
    nova = ws.checkout("nova").resolve()
    servers_py = nova / SERVERS_PY
    before_text, before_status = servers_py.read_text(), git_status(nova)
    demo = project_id(ws, "demo")
    can = source_line(servers_py, "    def detail(self, req):", "context.can(")
    try:
        with devstack_notebook(site, LABS / "03-ide-debuggers.ipynb", monkeypatch) as lab:
            lab.run_until("ds-ide-cleanup")
            t = lab.text
            assert f"nova checkout: {nova}" in t["ds-ide-setup"]  # the real path, not the stack's symlink
            assert re.search(r"pydevd-pycharm \S+ · debugpy \S+", t["ds-ide-setup"])
            # PyCharm: the settrace lines moved the policy check down by two; n-api connected to the
            # stand-in server, stopped there, evaluated in the request's frame, and completed
            assert re.search(rf"^\s*{can + 2}\* .*context\.can\(", t["ds-ide-pycharm-edit"], re.M), t["ds-ide-pycharm-edit"]
            assert "+        pydevd_pycharm.settrace('127.0.0.1', port=" in t["ds-ide-pycharm-edit"]
            hit = t["ds-ide-pycharm-hit"]
            assert re.search(r"answered the handshake, version \d+\.\d+", hit), hit
            assert f"suspended in detail() at {servers_py}:{can + 2}" in hit, hit
            assert f"context.project_id = {demo}" in hit
            assert re.search(r"the request completed: \d+ server\(s\) listed $", hit, re.M), hit
            # the unit was restarted for each edit and each undo, by its name only
            assert (tmp_path / "restarts.log").read_text().split() == ["devstack@n-api"] * 3
            # VS Code: six lines after the imports move the policy check down by six; n-api listened
            # where the added lines said; the DAP session stopped at the check and evaluated there
            assert re.search(rf"^\s*{can + 6}\* .*context\.can\(", t["ds-ide-debugpy-edit"], re.M)
            port = int(re.search(r"debugpy\.listen\(\('127\.0\.0\.1', (\d+)\)\)", t["ds-ide-debugpy-edit"])[1])
            python = re.search(r"^DevStack's python: (\S+)$", t["ds-ide-setup"], re.M)[1]
            assert f"+debugpy.configure(python='{python}')" in t["ds-ide-debugpy-edit"]  # not uwsgi's executable
            assert f'"port": {port}' in t["ds-ide-launch-json"]
            dap = t["ds-ide-dap-session"]
            assert "breakpoint verified: True" in dap and f"stopped (breakpoint) in detail() at {servers_py}:{can + 6}" in dap, dap
            assert f"context.project_id = '{demo}'" in dap
            assert re.search(r"the request completed: \d+ server\(s\) listed $", dap, re.M), dap
            # the exercise, as a student does it: one more expression, then the answers
            session = cell(lab.nb, "ds-ide-dap-session").source.replace(
                '"type(req).__name__"]', '"req.api_version_request.get_string()"]')
            shown = lab.run("ds-ide-dap-session", session)
            microversion = re.search(r"req\.api_version_request\.get_string\(\) = '(\d+\.\d+)'", shown)[1]
            assert "no answer yet" in lab.run("ds-ide-check")
            right = f'LOCAL_ROOT = "/home/sam/src/nova"\nREMOTE_ROOT = "{nova}"\nMICROVERSION = "{microversion}"'
            assert "✗ swapped" in lab.answer(
                f'LOCAL_ROOT = "{nova}"\nREMOTE_ROOT = "/home/sam/src/nova"\nMICROVERSION = "{microversion}"')
            assert "✗ MICROVERSION" in lab.answer(right.replace(f'"{microversion}"', '"2.1"'))
            assert "✗ REMOTE_ROOT" in lab.answer(right.replace(f'"{nova}"', '"/opt/stack/nova-old"'))
            assert "✓ right" in lab.answer(right)
            cleanup = lab.run("ds-ide-cleanup")
            assert "servers.py is back as it was" in cleanup and "answers again" in cleanup, cleanup
        assert servers_py.read_text() == before_text and git_status(nova) == before_status
        assert (tmp_path / "restarts.log").read_text().split() == ["devstack@n-api"] * 4
    finally:  # never leave the debugger lines behind, whatever failed
        if servers_py.read_text() != before_text:
            servers_py.write_text(before_text)
        supervisor.restart(ws, debug=None)
