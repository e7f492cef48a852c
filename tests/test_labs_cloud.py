"""Technique labs 4-6 (remote-pdb, IDE debuggers, logs and tracebacks) executed end to end
with nbclient on the lab's `debuglab` kernel against one running mini-cloud. Their debugger
cells drive real debuggers in the running nova (remote-pdb over its socket, pydevd as
PyCharm would, debugpy over DAP, ipykernel's debugger as JupyterLab does); the tests assert
what those cells show against what the test finds on its own (Keystone's project ids, the
checkout's source lines, nova.log), and that each exercise's checker rejects wrong answers
and accepts the right one, executed in the same kernel as the rest of the notebook.

Set DEBUGLAB_TEST_LAB=/path/to/lab to run them against an existing lab.
"""

from __future__ import annotations

import ast
import re
import subprocess
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from debuglab.cloud import supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, kernel
from tests._util import ROOT
from tests.test_cloud import NOVACLIENT, lab_python
from tests.test_notebooks import cell, nb_cloud, output  # noqa: F401 (nb_cloud: the module's cloud)

pytestmark = pytest.mark.slow

LABS = ROOT / "labs"
SERVERS_PY = "nova/api/openstack/compute/servers.py"


class LabRun:
    """A lab notebook executed cell by cell on the lab's kernel; the kernel stays up so that
    a test can run cells again with other sources (a student's answers)."""

    def __init__(self, client, nb):
        self.client, self.nb = client, nb
        self.text: dict[str, str] = {}

    def run(self, cell_id: str, source: str | None = None) -> str:
        index, found = next((i, c) for i, c in enumerate(self.nb.cells) if c.id == cell_id)
        if source is not None:
            found.source = source
        self.client.execute_cell(found, index)
        self.text[cell_id] = output(found)
        return self.text[cell_id]

    def run_until(self, stop_id: str) -> None:
        """Every code cell before `stop_id`, in order."""
        for c in self.nb.cells:
            if c.id == stop_id:
                return
            if c.cell_type == "code":
                self.run(c.id)
        raise AssertionError(f"no cell {stop_id}")

    def answer(self, source: str) -> str:
        """Put `source` into the answer cell, run it and the checker; the checker's output."""
        self.run(cell(self.nb, "answer").id, source)
        return self.run(cell(self.nb, "check").id)


@contextmanager
def lab_notebook(ws: Workspace, name: str, monkeypatch):
    from nbclient import NotebookClient

    for key, value in kernel.jupyter_env(ws).items():
        monkeypatch.setenv(key, value)
    path = LABS / name
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name=content.KERNEL_NAME, timeout=300,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        yield LabRun(client, nb)


def project_id(ws: Workspace, user: str) -> str:
    """The project of `user`'s token, straight from Keystone (not through the notebook)."""
    return lab_python(ws, NOVACLIENT.replace("ACTION", "result['project'] = sess.get_project_id()"),
                      user=user)["project"]


def git_status(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout


def source_line(path: Path, start: str, contains: str) -> int:
    """1-based number of the first line after the line `start` that holds `contains`."""
    lines = path.read_text().splitlines()
    first = lines.index(start)
    return next(n for n in range(first + 1, len(lines) + 1) if contains in lines[n - 1])


def services(trail: str) -> set[str]:
    """The services a trail cell says logged the request."""
    return set(ast.literal_eval(re.search(r"services that logged this request: (\[.*\])", trail).group(1)))


def local_conf_text(ws: Workspace) -> str | None:
    path = ws.root / "local.conf"
    return path.read_text() if path.exists() else None


def nova_log(ws: Workspace) -> str:
    return CloudPaths(ws).log("nova").read_text()


def log_lines(ws: Workspace, request_id: str) -> list[tuple[str, str]]:
    """(logger, line) of every nova.log line logged in the context of `request_id`."""
    out = []
    for line in nova_log(ws).splitlines():
        m = re.match(r"^\S+ \S+ \d+ [A-Z]+ (\S+) \[([^\]]*)\]", line)
        if m and request_id in m.group(2).split()[:2]:
            out.append((m.group(1), line))
    return out


# --------------------------------------------------------------------------- lab 4: remote-pdb


def test_remote_pdb_lab_stops_in_show_and_shows_context_instance_and_policy(nb_cloud, monkeypatch):
    ws = nb_cloud
    nova = ws.checkout("nova")
    servers_py = nova / SERVERS_PY
    before_text, before_status = servers_py.read_text(), git_status(nova)
    demo, admin = project_id(ws, "demo"), project_id(ws, "admin")
    try:
        with lab_notebook(ws, "04-remote-pdb.ipynb", monkeypatch) as lab:
            lab.run_until("rpdb-cleanup")
            t = lab.text
            port = int(re.search(r"remote-pdb port: (\d+)", t["rpdb-port"]).group(1))
            assert f"opens remote-pdb on 127.0.0.1:{port}" in t["rpdb-restart"], t["rpdb-restart"]
            assert supervisor.read_state(ws).debug == "remote-pdb"
            server_id = re.search(r"server lab04-vm: (\S+) is ACTIVE", t["rpdb-create"]).group(1)

            # stopped at the breakpoint in show(), on the line after it
            assert re.search(r"servers\.py\(\d+\)show\(\)\n-> context = req\.environ\['nova\.context'\]",
                             t["rpdb-client"]), t["rpdb-client"]
            assert "nova/api/openstack/wsgi.py" in t["rpdb-where"] and "show()" in t["rpdb-where"]
            # the request context: the demo user's project as Keystone has it
            ctx = t["rpdb-context"]
            assert "<class 'nova.context.RequestContext'>" in ctx
            assert "('demo', 'demo')" in ctx and f"'{demo}'" in ctx, ctx
            assert re.search(r"p context.roles\n\[[^\]]*'member'[^\]]*\]", ctx), ctx
            assert re.search(r"p context.is_admin\nFalse", ctx), ctx
            request_id = re.search(r"'(req-[0-9a-f-]{36})'", ctx).group(1)
            assert "our stopped request still waits: True" in t["rpdb-others"]
            # the DB object, and the frame at the policy check
            can_line = source_line(servers_py, "    def show(self, req, id):", "context.can(")
            db = t["rpdb-db"]
            assert f"servers.py({can_line})show()" in db, db
            assert "<class 'nova.objects.instance.Instance'>" in db
            assert f"('{server_id}', 'active'," in db and "('m1.nano', 128, 1)" in db
            # the policy check: its rule, a foreign project refused, step into can(), its value
            policy = t["rpdb-policy"]
            assert "'os_compute_api:servers:show'" in policy
            assert re.search(r"fatal=False\)\nFalse", policy), policy
            assert re.search(r"continue\n(Deleted breakpoint 1 at \S+\n)?> \S+/nova/context\.py\(\d+\)can\(\)", policy), policy
            assert "'os_compute_api:servers:show', {'project_id': '%s'}" % demo in policy, policy
            assert re.search(r"--Return--\n> .*nova/context\.py\(\d+\)can\(\)->True", policy), policy
            assert "the request completed: lab04-vm ACTIVE" in t["rpdb-continue"]
            # the request id pdb showed is the one nova logged for that GET
            assert any(f"GET /v2.1/servers/{server_id}" in line for _, line in log_lines(ws, request_id))
            assert "the admin's request completed: True" in t["rpdb-exercise-session"]

            # the exercise: wrong answers are rejected, the right one accepted
            assert "no answer yet" in lab.text["rpdb-check"]
            assert "✗ swapped" in lab.answer(f'CONTEXT_PROJECT_ID = "{demo}"\nSERVER_PROJECT_ID = "{admin}"\n'
                                            "ALLOWED = True")
            assert "✗ the request completed" in lab.answer(
                f'CONTEXT_PROJECT_ID = "{admin}"\nSERVER_PROJECT_ID = "{demo}"\nALLOWED = False')
            assert "✓ right" in lab.answer(f'CONTEXT_PROJECT_ID = "{admin}"\nSERVER_PROJECT_ID = "{demo}"\n'
                                          "ALLOWED = True")

            cleanup = lab.run("rpdb-cleanup")
            assert "servers.py is back as it was" in cleanup, cleanup
        assert servers_py.read_text() == before_text and git_status(nova) == before_status
        assert supervisor.read_state(ws).debug is None
    finally:  # never leave the breakpoint behind, whatever failed
        if servers_py.read_text() != before_text:
            servers_py.write_text(before_text)
            supervisor.restart(ws, debug=None)


# --------------------------------------------------------------------------- lab 5: IDE debuggers


def test_ide_lab_hits_breakpoints_through_pydevd_debugpy_and_the_kernel_debugger(nb_cloud, monkeypatch):
    ws = nb_cloud
    nova = ws.checkout("nova")
    demo = project_id(ws, "demo")
    line = source_line(nova / SERVERS_PY, "    def detail(self, req):", "context.can(")
    where = f"detail() at {nova / SERVERS_PY}:{line}"
    try:
        with lab_notebook(ws, "05-ide-debuggers.ipynb", monkeypatch) as lab:
            lab.run_until("ide-cleanup")
            t = lab.text
            # PyCharm's side, played by a listener: handshake, breakpoint, evaluate, resume
            assert f"Path mappings: {nova} = {nova}" in t["ide-pycharm-restart"], t["ide-pycharm-restart"]
            assert re.search(r"answered the handshake, version \d+\.\d+", t["ide-pycharm-restart"])
            hit = t["ide-pycharm-hit"]
            assert f"suspended in {where}" in hit, hit
            assert f"context.project_id = {demo}" in hit
            assert re.search(r"the request completed: \d+ server\(s\) listed", hit), hit
            assert "connected to PyCharm on 127.0.0.1" in nova_log(ws)
            # VS Code's side, played by a DAP client
            dap = t["ide-dap-session"]
            assert "breakpoint verified: True" in dap and f"stopped (breakpoint) in {where}" in dap, dap
            assert f"context.project_id = '{demo}'" in dap
            assert re.search(r"the request completed: \d+ server\(s\) listed", dap), dap
            assert supervisor.read_state(ws).debug == "debugpy"
            # JupyterLab's side, played over a second kernel's control channel
            jl = t["ide-jupyterlab"]
            assert "stopped at line 2 of the cell" in jl, jl
            assert f"stepped into __init__() at {nova}/nova/api/openstack/api_version_request.py" in jl
            assert "'version_string': \"'2.95'\"" in jl
            assert "match.groups() = ('2', '95')" in jl
            assert "the cell printed: API Version Request Major: 2, Minor: 95" in jl

            # the exercise, done as a student would: one more expression in the VS Code cell
            session = cell(lab.nb, "debugpy").source.replace(
                'EXPRESSIONS = ["context.project_id", "type(req).__name__"]',
                'EXPRESSIONS = ["context.project_id", "req.api_version_request.get_string()"]')
            assert "api_version_request" in session
            shown = lab.run("ide-dap-session", session)
            microversion = re.search(r"req\.api_version_request\.get_string\(\) = '(\d+\.\d+)'", shown).group(1)
            logged = re.findall(r'"GET /v2.1/servers/detail" status: 200 .* microversion: (\S+)', nova_log(ws))
            assert logged and logged[-1] == microversion  # what nova logged for that request
            assert "no answer yet" in lab.text["ide-check"]
            right = f'LOCAL_ROOT = "/home/sam/src/nova"\nREMOTE_ROOT = "{nova}"\nMICROVERSION = "{microversion}"'
            assert "✗ swapped" in lab.answer(
                f'LOCAL_ROOT = "{nova}"\nREMOTE_ROOT = "/home/sam/src/nova"\nMICROVERSION = "{microversion}"')
            wrong_version = lab.answer(right.replace(f'"{microversion}"', '"2.1"'))
            assert "✗ MICROVERSION" in wrong_version and "LOCAL_ROOT" not in wrong_version, wrong_version
            assert "✗ REMOTE_ROOT" in lab.answer(right.replace(f'"{nova}"', '"/opt/stack/nova"'))
            assert "✓ right" in lab.answer(right)
            lab.run("ide-cleanup")
        assert supervisor.read_state(ws).debug is None
    finally:
        if supervisor.read_state(ws) is None or supervisor.read_state(ws).debug is not None:
            supervisor.restart(ws, debug=None)


# --------------------------------------------------------------------------- lab 6: logs and tracebacks


def test_logs_lab_follows_request_ids_across_services_and_reads_the_traceback(nb_cloud, monkeypatch):
    ws = nb_cloud
    nova = ws.checkout("nova")
    local_conf_before = local_conf_text(ws)
    with lab_notebook(ws, "06-logs-and-tracebacks.ipynb", monkeypatch) as lab:
        try:
            lab.run_until("logs-cleanup")
            t = lab.text
            assert re.search(r"^request_id\s+req-[0-9a-f-]{36}$", t["logs-anatomy"], re.M), t["logs-anatomy"]
            assert re.search(r"^logger\s+nova\.api\.openstack\.requestlog$", t["logs-anatomy"], re.M)

            # one create, followed by its request id: API, placement (global id), compute
            request_id = re.search(r": ACTIVE; its create was request (req-\S+)", t["logs-create"]).group(1)
            loggers = {logger for logger, _ in log_lines(ws, request_id)}
            assert {"nova.api.openstack.requestlog", "nova.compute.manager"} <= loggers, loggers
            # placement logs nova's request id as the global request id of its own requests
            assert any(logger == "placement.requestlog" and f"[{request_id} req-" in line
                       for logger, line in log_lines(ws, request_id))
            assert {"n-api", "n-cpu", "placement"} <= services(t["logs-trail"]), t["logs-trail"]
            assert "n-cond" not in services(t["logs-trail"])
            # the scheduler's one INFO line for a build: a host it kept no list for (none of
            # its servers existed when the scheduler started), as the lab's text says
            scheduler = [line for logger, line in log_lines(ws, request_id) if logger.startswith("nova.scheduler")]
            assert all("Received an update from an unknown host" in line for line in scheduler), scheduler
            assert ("n-sch" in services(t["logs-trail"])) == bool(scheduler)

            # at DEBUG (local.conf, as on DevStack), one create is in every nova service's lines
            debug_id = re.search(r"lab06-debug: ACTIVE \(request (req-\S+)\)", t["logs-debug-create"]).group(1)
            loggers = {logger.split(".")[1] for logger, _ in log_lines(ws, debug_id) if logger.startswith("nova.")}
            assert {"api", "conductor", "scheduler", "compute"} <= loggers, loggers
            assert {"n-api", "n-cond", "n-sch", "n-cpu", "placement"} <= services(t["logs-debug-create"])
            assert local_conf_text(ws) == local_conf_before  # put back as it was
            assert "debug = False" in t["logs-debug-off"], t["logs-debug-off"]

            # the failed build: conductor and scheduler log it, the compute never saw it
            failed_id = re.search(r"lab06-failed: ERROR \(request (req-\S+)\)", t["logs-failed"]).group(1)
            assert "No valid host was found" in t["logs-failed"]
            loggers = {logger for logger, _ in log_lines(ws, failed_id)}
            assert "nova.conductor.manager" in loggers and "nova.scheduler.manager" in loggers, loggers
            assert not any(logger.startswith("nova.compute") for logger in loggers), loggers
            assert services(t["logs-failed-trail"]) == {"n-api", "n-cond", "n-sch", "placement"}, \
                t["logs-failed-trail"]
            assert failed_id in t["logs-traceback"] and "Traceback (most recent call last):" in t["logs-traceback"]
            # the line the notebook says raised it is a `raise NoValidHost` of select_destinations
            raised = int(re.search(r"raised in: select_destinations\(\) at nova/scheduler/manager\.py:(\d+)",
                                   t["logs-raised"]).group(1))
            manager = (nova / "nova/scheduler/manager.py").read_text().splitlines()
            start = manager.index("    def select_destinations(") + 1
            end = next(n for n in range(start + 1, len(manager)) if manager[n - 1].startswith("    def "))
            assert start < raised < end and "raise exception.NoValidHost" in manager[raised - 1], raised
            assert "exception: nova.exception.NoValidHost" in t["logs-raised"]
            assert re.search(r"^MEMORY_MB\s+1048576\s+\d+\s+<- too much$", t["logs-cause"], re.M), t["logs-cause"]
            assert t["logs-cause"].count("too much") == 1

            # the exercise: the test solves the mystery from nova.log on its own
            mystery = re.search(r"server lab06-mystery (\S+): ERROR", t["logs-mystery"]).group(1)
            log = nova_log(ws)
            mystery_id = re.search(rf"\[None (req-\S+) [^\]]*\] \[instance: {mystery}\]", log).group(1)
            asked = re.search(rf"placement\.requestlog \[{mystery_id} [^\]]*\] \S+ \"GET /allocation_candidates"
                              r"\S*resources=(\S+?)&", log).group(1)
            amounts = dict(item.split("%3A") for item in asked.split("%2C"))
            resource = max(amounts, key=lambda rc: int(amounts[rc]))  # 10^6 units of one, a few of the others
            assert int(amounts[resource]) >= 1_000_000, amounts
            other = next(rc for rc in amounts if rc != resource)
            assert "no answer yet" in lab.text["logs-check"]
            right = f'MYSTERY_REQUEST_ID = "{mystery_id}"\nMYSTERY_SERVICE = "n-cond"\nMYSTERY_RESOURCE = "{resource}"'
            wrong = lab.answer(right.replace(mystery_id, request_id))
            assert "✗ MYSTERY_REQUEST_ID" in wrong and "MYSTERY_RESOURCE" not in wrong, wrong
            assert "✗ MYSTERY_SERVICE" in lab.answer(right.replace('"n-cond"', '"n-cpu"'))
            assert "✗ MYSTERY_RESOURCE" in lab.answer(right.replace(f'"{resource}"', f'"{other}"'))
            assert f"✓ right: {mystery_id} failed in the conductor" in lab.answer(right)
        except BaseException:
            try:  # delete what the lab made, without hiding the failure
                lab.run("logs-cleanup")
            except Exception:
                pass
            if local_conf_text(ws) != local_conf_before:  # debug logging left on
                if local_conf_before is None:
                    (ws.root / "local.conf").unlink()
                else:
                    (ws.root / "local.conf").write_text(local_conf_before)
                supervisor.restart(ws)
            raise
        cleanup = lab.run("logs-cleanup")
    assert "deleted the servers and flavors of this lab" in cleanup
    assert local_conf_text(ws) == local_conf_before
