"""The student notebooks: committed ones match the generator, carry no outputs and no
spoilers; the `debuglab` kernel and `debuglab notebook`; and (slow) the welcome notebook
and a bug notebook executed with nbclient on the lab's kernel against a running
mini-cloud, asserting what their cells show.

Set DEBUGLAB_TEST_LAB=/path/to/lab to run the slow tests against an existing lab.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from debuglab.catalog.model import Catalog
from debuglab.cloud import config, supervisor
from debuglab.core import processes
from debuglab.lab.workspace import LAB_TOML, Workspace
from debuglab.notebooks import content, kernel
from tests._util import ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLI = "import sys; from debuglab.cli import main; from debuglab.notebooks.commands import notebook; " \
      "main.add_command(notebook); main(sys.argv[1:])"


def committed() -> list[Path]:
    return sorted((ROOT / "labs").rglob("*.ipynb"))


def all_text(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells)


# Technique labs (labs/NN-name.ipynb and labs/devstack/NN-name.ipynb, but the generated
# welcomes) are written by hand in JupyterLab; they teach nova's tests, so they may name
# nova.tests, but never a bug's.
TECHNIQUE_LAB = re.compile(r"^labs/(devstack/)?\d\d-[\w-]+\.ipynb$")


def spoilers(text: str, catalog: Catalog, kit_root: Path, allow: tuple[str, ...] = ()) -> list[str]:
    """Everything in `text` that gives a bug away: a hint, a scope path, a test id or its
    test module, a line of a fix (`allow`: generic words this notebook may use)."""
    from collections import Counter

    # "hub files" in allow: a technique lab may name a scope file that several bugs share
    # (the compute manager): it gives no one bug away
    shared = Counter(path for bug in catalog.bugs.values() for path in bug.scope)
    found = []
    for bug in catalog.bugs.values():
        found += [f"{bug.id}: hint {n}" for n, hint in enumerate(bug.hints, 1) if hint in text]
        found += [f"{bug.id}: scope {path}" for path in bug.scope
                  if path in text and not ("hub files" in allow and shared[path] > 1)]
        found += [f"{bug.id}: test {t}" for t in bug.test_ids if t in text]
        found += [f"{bug.id}: test module {m}" for m in sorted({t.rsplit(".", 2)[0] for t in bug.test_ids})
                  if m in text]
        for patch in (kit_root / "instructor" / "solutions" / bug.id).glob("*.patch"):
            for line in patch.read_text().splitlines():
                added = line[1:].strip()
                if line.startswith("+") and not line.startswith("+++") and len(added) >= 20 and added in text:
                    found.append(f"{bug.id}: {patch.name} line {added!r}")
    found += [word for word in ("nova.tests", "debuglab_hidden", "test_hidden", "fail_to_pass", "pass_to_pass")
              if word in text and word not in allow]
    return found


# --------------------------------------------------------------------------- the committed notebooks


def test_committed_notebooks_are_the_generated_ones(kit):
    generated = content.generate(kit)
    assert Path("labs/01-welcome.ipynb") in generated
    assert {p for p in generated if p.parent == Path("labs/bugs")} == \
        {Path("labs/bugs") / f"{b}.ipynb" for b in Catalog.load(kit.bugs_dir).bugs}
    stale = [str(rel) for rel, text in generated.items()
             if not (kit.root / rel).is_file() or (kit.root / rel).read_text() != text]
    extra = sorted(str(p.relative_to(kit.root)) for p in committed() if p.relative_to(kit.root) not in generated
                   and not TECHNIQUE_LAB.match(p.relative_to(kit.root).as_posix()))
    assert not stale, f"stale notebooks {stale}: regenerate with `python -m debuglab.notebooks`"
    assert not extra, f"notebooks the generator does not make: {extra}"
    assert content.generate(kit) == generated  # deterministic


def test_notebooks_are_stored_without_outputs_on_the_debuglab_kernel():
    assert committed()
    for path in committed():
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        devstack = path.relative_to(ROOT / "labs").parts[0] == content.DEVSTACK_LABS  # a DevStack host's
        assert nb.metadata.kernelspec.name == (content.DEVSTACK_KERNEL_NAME if devstack else content.KERNEL_NAME), path
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path}: {cell.id} has outputs"


def test_notebooks_give_nothing_away(kit):
    catalog = Catalog.load(kit.bugs_dir)
    for path in committed():
        nb = nbformat.read(path, as_version=4)
        technique = TECHNIQUE_LAB.match(path.relative_to(kit.root).as_posix())
        text = all_text(nb) + "\n" + json.dumps([c.metadata for c in nb.cells])  # stdin scripts too
        assert spoilers(text, catalog, kit.root, allow=("nova.tests", "hub files") if technique else ()) == [], path
    for bug in catalog.bugs.values():
        nb = nbformat.read(kit.root / "labs" / "bugs" / f"{bug.id}.ipynb", as_version=4)
        text = all_text(nb)
        assert bug.title in text and content.fenced(bug.symptom.strip()) in text
        checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
        assert len(checks) == 1 and f"check {bug.id}" in checks[0].source
        assert any("reproduce" in c.metadata.get("tags", []) for c in nb.cells)


def test_the_spoiler_check_catches_a_hint_a_scope_path_a_test_and_a_fix(kit):
    catalog = Catalog.load(kit.bugs_dir)
    bug = catalog.bugs["flavor-disk-ephemeral"] if "flavor-disk-ephemeral" in catalog.bugs else next(iter(catalog.bugs.values()))
    fix = (kit.solutions_dir / bug.id / "fix.patch").read_text().splitlines()
    fix_line = next(line[1:] for line in fix if line.startswith("+") and not line.startswith("+++")
                    and len(line[1:].strip()) >= 20)
    for leak in (bug.hints[1], bug.scope[0], bug.fail_to_pass[0], fix_line):
        nb = content.bug_notebook(bug, f"print({leak!r})")
        assert spoilers(all_text(nb), catalog, kit.root), leak
    # a technique lab may name nova's tests, but not the module of a bug's test
    module = bug.fail_to_pass[0].rsplit(".", 2)[0]
    assert spoilers("python -m testtools.run nova.tests.unit.test_utils", catalog, kit.root, allow=("nova.tests",)) == []
    assert spoilers(f"python -m testtools.run {module}", catalog, kit.root, allow=("nova.tests",)) == \
        [f"{bug.id}: test module {module}"]


# --------------------------------------------------------------------------- the kernel and `debuglab notebook`


def fake_lab(tmp_path: Path) -> Workspace:
    """A folder that opens as a lab, whose 'venv' python is this one (no nova)."""
    root = tmp_path / "lab"
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").symlink_to(sys.executable)
    (root / LAB_TOML).write_text('[lab]\nbugs = []\n')
    return Workspace.open(root)


def test_register_kernel_writes_a_kernelspec_for_the_lab_venv(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    ws = fake_lab(tmp_path)
    folder = kernel.register_kernel(ws)
    assert folder == ws.root / "jupyter" / "kernels" / "debuglab"
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["argv"][:3] == [str(ws.python), "-m", "ipykernel_launcher"]
    assert spec["env"]["DEBUGLAB_LAB"] == str(ws.root)
    assert Path(spec["env"]["DEBUGLAB_CLI"]).name == "debuglab"
    monkeypatch.setenv("JUPYTER_PATH", kernel.jupyter_env(ws)["JUPYTER_PATH"])
    found = KernelSpecManager().find_kernel_specs()
    assert Path(found["debuglab"]) == folder


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:
        return 0, b""


def test_notebook_command_serves_labs_on_loopback_with_a_token(tmp_path):
    """The foreground form, `debuglab notebook` (the service form: tests/test_jupyterlab.py)."""
    ws = fake_lab(tmp_path)
    [port] = free_ports(1)
    server = subprocess.Popen([sys.executable, "-c", CLI, "notebook", "--dir", str(ws.root), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    token_file = ws.root / "jupyter" / "token"
    try:
        deadline = time.monotonic() + 60
        while not token_file.is_file() or get(f"{base}/api/status?token={token_file.read_text()}")[0] != 200:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "JupyterLab did not answer in 60 s"
            time.sleep(0.5)
        token = token_file.read_text()
        assert get(f"{base}/api/kernelspecs")[0] == 403  # no token, no entry
        status, body = get(f"{base}/api/kernelspecs?token={token}")
        specs = json.loads(body)
        assert specs["default"] == "debuglab"
        assert specs["kernelspecs"]["debuglab"]["spec"]["argv"][0] == str(ws.python)
        names = [item["name"] for item in json.loads(get(f"{base}/api/contents?token={token}")[1])["content"]]
        # the lab's own copy: the technique labs, and the bugs planted in it (none here)
        assert "01-welcome.ipynb" in names and not {"bugs", "devstack", "reproduce"} & set(names), names
        assert get(f"{base}/lab/tree/01-welcome.ipynb?token={token}")[0] == 200
        # the server starts the lab's kernel (here: this python, as the fake lab's venv)
        req = urllib.request.Request(f"{base}/api/kernels?token={token}", data=b'{"name": "debuglab"}',
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            kernel = json.loads(resp.read())
        assert resp.status == 201 and kernel["name"] == "debuglab"
        listening = {addr for socks in processes.listeners().values() for addr, p in socks if p == port}
        assert listening == {"127.0.0.1"}
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C: debuglab stops JupyterLab with it
        out, _ = server.communicate(timeout=30)
    assert f"{base}/lab/tree/01-welcome.ipynb?token={token}" in out
    deadline = time.monotonic() + 10
    while not processes.port_free(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes.port_free(port), "JupyterLab outlived debuglab notebook"


# --------------------------------------------------------------------------- executed against the mini-cloud


def free_ports(n: int) -> list[int]:
    from tests.test_cloud import free_ports as pick

    return pick(n)


@pytest.fixture(scope="module")
def nb_cloud(lab_under_test):
    """The lab's cloud on free ports and its kernel registered; stopped at the end."""
    ws = lab_under_test
    supervisor.stop(ws)
    keys = list(config.DEFAULT_PORTS)
    supervisor.start(ws, ports=dict(zip(keys, free_ports(len(keys)))))
    kernel.register_kernel(ws)
    yield ws
    supervisor.stop(ws)


def execute(ws: Workspace, nb, monkeypatch, cwd: Path, timeout: float = 600):
    from nbclient import NotebookClient

    for key, value in kernel.jupyter_env(ws).items():
        monkeypatch.setenv(key, value)
    NotebookClient(nb, kernel_name=content.KERNEL_NAME, timeout=timeout,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def output(cell) -> str:
    text = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)
    return ANSI.sub("", text).replace("\r", "")


def cell(nb, tag_or_id: str):
    return next(c for c in nb.cells if c.id == tag_or_id or tag_or_id in c.metadata.get("tags", []))


@pytest.mark.slow
def test_welcome_notebook_runs_against_the_cloud_and_checks_the_exercise(nb_cloud, monkeypatch):
    ws = nb_cloud
    path = ROOT / "labs" / content.WELCOME
    nb = execute(ws, nbformat.read(path, as_version=4), monkeypatch, path.parent)
    text = {c.id: output(c) for c in nb.cells if c.cell_type == "code"}
    nova_pid = supervisor.read_state(ws).pids["nova"]
    assert f"lab: {ws.root}" in text["welcome-02"]
    assert f"nova is imported from {ws.checkout('nova')}/nova/__init__.py" in text["welcome-04"]
    assert f"nova/api/openstack/compute/servers.py runs in: n-api (pid {nova_pid})" in text["welcome-06"]
    assert f"nova API: {supervisor.read_state(ws).settings.endpoint('nova')}" in text["welcome-08"]
    assert re.search(r"nova-compute\s+\S+\s+up", text["welcome-09"]), text["welcome-09"]
    assert "no answer yet" in output(cell(nb, "check"))

    nb = nbformat.read(path, as_version=4)
    cell(nb, "answer").source = f'SERVICE = "n-sch"\nPID = {nova_pid}'
    execute(ws, nb, monkeypatch, path.parent)
    assert "does not run in 'n-sch'" in output(cell(nb, "check"))
    cell(nb, "answer").source = f'SERVICE = "n-cond"\nPID = {nova_pid}'
    execute(ws, nb, monkeypatch, path.parent)
    assert f"✓ right: nova/conductor/tasks/live_migrate.py runs in n-cond, pid {nova_pid}" in output(cell(nb, "check"))


@pytest.mark.slow
def test_a_bug_notebook_reproduces_its_symptom_and_checks_with_a_hint(nb_cloud, monkeypatch, kit):
    """One bug's notebook, whole: its reproduce cell shows the bug (verdict cell), and its
    check cell says not fixed with the first hint only. (`bugs verify --live` runs every
    bug's reproduce snippet, with and without its fix.)"""
    ws = nb_cloud
    catalog = Catalog.load(kit.bugs_dir)
    bug = next((catalog.bugs[i] for i in ("keypair-list-next-link",) if i in catalog.bugs and i in ws.bugs()),
               None) or next(b for b in catalog.bugs.values() if b.id in ws.bugs() and b.project == "nova")
    hints_file = ws.root / ".debuglab" / "hints.json"
    before = hints_file.read_text() if hints_file.is_file() else None
    hints_file.unlink(missing_ok=True)  # a student who has seen no hint yet
    path = ROOT / "labs" / "bugs" / f"{bug.id}.ipynb"
    try:
        nb = execute(ws, nbformat.read(path, as_version=4), monkeypatch, path.parent)
    finally:  # leave the session lab's hint state as it was
        if before is None:
            hints_file.unlink(missing_ok=True)
        else:
            hints_file.write_text(before)
    assert "→ the cloud shows the bug" in output(cell(nb, "verdict")), output(cell(nb, "reproduce"))
    checked = output(cell(nb, "check"))
    assert f"{bug.id} — {bug.title}: ✗ not-fixed" in checked and bug.feedback.not_fixed in checked, checked
    assert "hint 1/" in checked and bug.hints[0] in checked and bug.hints[1] not in checked
    assert "0 of 1 bug(s) fixed" in checked


def execute_to_reproduce(ws: Workspace, bug_id: str, monkeypatch):
    """A bug notebook run up to its reproduce cell (the check cell is the flavor test's)."""
    path = ROOT / "labs" / "bugs" / f"{bug_id}.ipynb"
    nb = nbformat.read(path, as_version=4)
    last = next(n for n, c in enumerate(nb.cells) if "reproduce" in c.metadata.get("tags", []))
    nb.cells = nb.cells[:last + 1]
    return output(cell(execute(ws, nb, monkeypatch, path.parent), "reproduce"))


def test_a_storys_indented_shell_session_becomes_a_fenced_console_block():
    story = "Boot it:\n\n    $ openstack server create vm1\n    $ openstack server show vm1\n    | status | ERROR |\n\nThen:\n\n    $ nova list\n"
    assert content.fenced(story) == ("Boot it:\n\n```console\n$ openstack server create vm1\n$ openstack server show vm1\n"
                                     "| status | ERROR |\n```\n\nThen:\n\n```console\n$ nova list\n```\n")
    assert content.fenced("a list\n    continued\n") == "a list\n    continued\n"  # no blank line: not a block
