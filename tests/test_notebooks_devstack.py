"""The notebooks a DevStack host serves (labs/devstack/): the committed ones match the
generator, run on the `debuglab-devstack` kernel and give nothing away; (slow) the welcome
notebook executed with debuglab.notebooks.headless on a real DevstackSite standing in for a DevStack
host, and a bug notebook reproducing its bug against the session lab's mini-cloud.

The stand-in host is real (its site file, its kernel, DevStack's python played by the lab
venv's, /opt/stack/nova by a symlink to the lab's checkout, DevStack's clouds.yaml by the
lab's, which has the same `devstack-admin` cloud) except for systemd and journald, which
cannot run here: its restart command appends the units to a file, its journal command
prints a file.

Set DEBUGLAB_TEST_LAB=/path/to/lab to run the slow tests against an existing lab.
"""

from __future__ import annotations

import re
import shlex
import socket
from pathlib import Path

import nbformat
import pytest
from nbformat import v4

from debuglab.catalog.model import Catalog
from debuglab.cloud import supervisor
from debuglab.core import processes
from debuglab.notebooks import content, headless, kernel
from debuglab.notebooks.devstack import DevstackSite
from debuglab.provision.inventory import DEFAULT_SERVICES
from tests._util import ROOT, stand_in_devstack
from tests.test_notebooks import TECHNIQUE_LAB, all_text, nb_cloud, spoilers  # noqa: F401 (nb_cloud: the module's cloud)

DEVSTACK = ROOT / "labs" / content.DEVSTACK_LABS
JOURNAL_TEXT = "Started devstack@n-api.service - Devstack devstack@n-api.service.\n"


def committed() -> list[Path]:
    return sorted(DEVSTACK.rglob("*.ipynb"))


# --------------------------------------------------------------------------- the committed notebooks


def test_committed_devstack_notebooks_are_the_generated_ones(kit):
    generated = {rel: text for rel, text in content.generate(kit).items() if rel.parts[:2] == ("labs", "devstack")}
    bugs = Catalog.load(kit.bugs_dir).bugs
    assert set(generated) == {Path("labs/devstack/01-welcome.ipynb")} | \
        {Path("labs/devstack/bugs") / f"{b}.ipynb" for b in bugs}
    stale = [str(rel) for rel, text in generated.items()
             if not (kit.root / rel).is_file() or (kit.root / rel).read_text() != text]
    extra = [str(p.relative_to(kit.root)) for p in committed() if p.relative_to(kit.root) not in generated
             and not TECHNIQUE_LAB.match(p.relative_to(kit.root).as_posix())]  # those are written by hand
    assert not stale, f"stale notebooks {stale}: regenerate with `python -m debuglab.notebooks`"
    assert not extra, f"notebooks the generator does not make: {extra}"
    # kernelspec, outputs and spoilers of every committed notebook: tests/test_notebooks.py


def test_devstack_bug_notebooks_give_nothing_away(kit):
    catalog = Catalog.load(kit.bugs_dir)
    for bug in catalog.bugs.values():
        nb = nbformat.read(DEVSTACK / "bugs" / f"{bug.id}.ipynb", as_version=4)
        text = all_text(nb)
        assert bug.title in text and content.fenced(bug.symptom.strip()) in text
        assert f"check {bug.id}" not in text  # no `debuglab check` on a DevStack host: collect, then grade
        assert "debuglab collect" in text
        assert not any("check" in c.metadata.get("tags", []) for c in nb.cells)
        assert len([c for c in nb.cells if "reproduce" in c.metadata.get("tags", [])]) == 1


def test_the_devstack_spoiler_check_catches_a_leak(kit):
    catalog = Catalog.load(kit.bugs_dir)
    bug = next(iter(catalog.bugs.values()))
    for leak in (bug.hints[0], bug.scope[0], bug.fail_to_pass[0]):
        assert spoilers(all_text(content.devstack_bug_notebook(bug, f"print({leak!r})")), catalog, kit.root), leak


def test_a_devstack_bug_notebook_leaves_the_unit_to_find_and_never_names_the_layer(kit):
    """Which unit runs the faulty code is the student's to find: every nova bug's notebook
    debugs every unit, and none names the bug's layer (the instructor's)."""
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        text = all_text(nbformat.read(DEVSTACK / "bugs" / f"{bug.id}.ipynb", as_version=4))
        assert "layer" not in text.lower(), bug.id
        if bug.project == "nova":
            assert "BUG_UNITS = list(UNITS)" in text and "restart(*BUG_UNITS)" in text, bug.id


# --------------------------------------------------------------------------- executed on a stand-in DevStack host


@pytest.fixture
def devstack_host(tmp_path, lab_under_test) -> DevstackSite:
    """A DevStack host made of the session lab; systemctl and journalctl replaced by
    commands that leave a trace."""
    journal = tmp_path / "journal.txt"
    journal.write_text(JOURNAL_TEXT)
    site = stand_in_devstack(
        lab_under_test, tmp_path, restart_command=f"echo {{units}} >> {shlex.quote(str(tmp_path / 'restarted'))}",
        journal_command=f"echo unit={{unit}} lines={{lines}}; cat {shlex.quote(str(journal))}")
    assert DevstackSite.open(site.stack_dir) == site
    return site


def welcome(answer: str, extra: list[str] = ()) -> nbformat.NotebookNode:
    nb = nbformat.read(DEVSTACK / content.WELCOME, as_version=4)
    headless.cell(nb, "answer").source = answer
    nb.cells += [v4.new_code_cell(source, id=f"test-{n}") for n, source in enumerate(extra, 1)]
    return nb


@pytest.mark.slow
def test_devstack_welcome_runs_on_a_devstack_site_and_checks_the_exercise(devstack_host, tmp_path):
    site = devstack_host
    free = next((p for p in DEFAULT_SERVICES.values() if processes.port_free(p)), None)
    with socket.socket() as sock:  # a unit stopped at a breakpoint: remote-pdb listens on its port
        if free:
            sock.bind(("127.0.0.1", free))
            sock.listen()
        expected = {port: "no" if processes.port_free(port) else "yes" for port in DEFAULT_SERVICES.values()}
        nb = headless.run(site, welcome(
            'FILE = "nova/api/openstack/compute/servers.py"\nUNIT = "devstack@n-api"\nPORT = 4444',
            ['restart("devstack@n-api", "devstack@n-sch")', "restart()", 'journal("devstack@n-cpu", lines=5)']),
            cwd=DEVSTACK)
    text = {c.id: headless.output(c) for c in nb.cells if c.cell_type == "code"}
    setup = text["welcome-02"]
    assert f"python: {site.python}\n" in setup, setup
    assert f"nova is imported from {site.stack_dir}/nova/nova/__init__.py" in setup, setup
    units = headless.output(headless.cell(nb, "welcome-05"))
    for unit, port in DEFAULT_SERVICES.items():
        assert re.search(rf"^{re.escape(unit)}\s+{port}\s+{expected[port]}\b", units, re.MULTILINE), units
    if free:
        assert expected[free] == "yes"
    assert f"unit=devstack@n-api lines=10\n{JOURNAL_TEXT}" in text["welcome-08"]
    checked = headless.output(headless.cell(nb, "check"))
    assert "✓ right: nova/api/openstack/compute/servers.py (class ServersController) runs in devstack@n-api" \
        in checked and "127.0.0.1:4444" in checked, checked
    # restart() and journal() ran the site's commands (systemd's and journald's stand-ins)
    assert (tmp_path / "restarted").read_text().splitlines() == \
        ["devstack@n-api devstack@n-sch", " ".join(DEFAULT_SERVICES)]
    assert "$ echo devstack@n-api devstack@n-sch >>" in text["test-1"] and "done" in text["test-1"]
    assert text["test-3"] == f"unit=devstack@n-cpu lines=5\n{JOURNAL_TEXT}"

    # wrong answers are told apart, and nothing raises
    wrong = ('FILE = "nova/compute/api.py"\nUNIT = "devstack@n-api"\nPORT = 4444',
             'FILE = "/dev/null/servers.py"\nUNIT = ""\nPORT = 0',
             f'FILE = "{site.nova}/nova/api/openstack/compute/servers.py"\nUNIT = "devstack@n-sch"\nPORT = 4448',
             'FILE = "nova/api/openstack/compute/servers.py"\nUNIT = "devstack@n-api"\nPORT = 4445')
    says = ("does not define the class", "no answer yet", "does not run nova's REST API", "right file and unit")
    for answer, said in zip(wrong, says):
        nb = welcome(answer)
        nb.cells = [headless.cell(nb, "welcome-02"), headless.cell(nb, "answer"), headless.cell(nb, "check")]
        checked = headless.output(headless.cell(headless.run(site, nb, cwd=DEVSTACK), "check"))
        assert checked.strip().splitlines()[-1].startswith("✗") and said in checked, (answer, checked)


def _to_reproduce_and_verdict(path: Path):
    """A DevStack bug notebook up to its reproduce cell, then a cell that prints BUG_SEEN."""
    from nbformat import v4

    nb = nbformat.read(path, as_version=4)
    last = next(n for n, c in enumerate(nb.cells) if "reproduce" in c.metadata.get("tags", []))
    nb.cells = nb.cells[:last + 1]  # setup, helpers, client, reproduce: not the debug or restart cells
    verdict = v4.new_code_cell("print('BUG_SEEN =', BUG_SEEN)")
    verdict.id, verdict.metadata["tags"] = "verdict", ["verdict"]
    nb.cells.append(verdict)
    return nb


@pytest.mark.slow
def test_devstack_bug_notebook_reproduces_the_symptom_against_the_cloud(nb_cloud, tmp_path, kit):
    ws = nb_cloud
    bug = next(b for b in Catalog.load(kit.bugs_dir).bugs.values()
               if b.id in ws.bugs() and b.difficulty == 1 and b.project == "nova"
               and not (ROOT / "labs" / "reproduce" / "devstack" / f"{b.id}.py").exists())
    site = stand_in_devstack(ws, tmp_path)  # no restart, no journal: the reproduce cell needs neither
    path = DEVSTACK / "bugs" / f"{bug.id}.ipynb"
    nb = headless.run(site, _to_reproduce_and_verdict(path), cwd=path.parent)
    client = next(headless.output(c) for c in nb.cells if c.cell_type == "code" and "nova API:" in headless.output(c))
    assert f"nova API: {supervisor.read_state(ws).settings.endpoint('nova')}" in client, client
    assert "BUG_SEEN = True" in headless.output(headless.cell(nb, "verdict")), headless.output(headless.cell(nb, "reproduce"))


@pytest.mark.slow
def test_devstack_num_instances_notebook_sets_nova_conf_and_restarts_the_scheduler(nb_cloud, tmp_path):
    """Its DevStack reproduce cell (labs/reproduce/devstack/) sets the scheduler's options
    with the site's config command and restarts devstack@n-sch, then puts them back. Here
    the config command is the lab's `debuglab cloud config set` (DevStack's iniset cannot
    run without DevStack) and the restart restarts the mini-cloud."""
    ws = nb_cloud
    bug_id = "num-instances-off-by-one"
    if bug_id not in ws.bugs():
        pytest.skip(f"{bug_id} is not planted in {ws.root}")
    cli = kernel.debuglab_cli()
    restarted = tmp_path / "restarted"
    site = stand_in_devstack(
        ws, tmp_path, restart_command=f'echo {{units}} >> {restarted} && "{cli}" cloud restart --dir "{ws.root}"',
        nova_conf=ws.root / "cloud" / "etc" / "nova.conf",
        config_command=f'"{cli}" cloud config set --dir "{ws.root}" {{section}} {{option}} {{value}}')
    local_conf = ws.root / "local.conf"
    before = local_conf.read_text() if local_conf.is_file() else None
    path = DEVSTACK / "bugs" / f"{bug_id}.ipynb"
    try:
        nb = headless.run(site, _to_reproduce_and_verdict(path), cwd=path.parent)
    finally:  # the lab's other users get the scheduler they had (at their next start)
        if before is None:
            local_conf.unlink(missing_ok=True)
        else:
            local_conf.write_text(before)
    shown = headless.output(headless.cell(nb, "reproduce"))
    units = restarted.read_text().split()
    assert units and set(units) == {"devstack@n-sch"}, shown  # only the scheduler's unit
    assert "cloud config set" in shown and "filter_scheduler max_instances_per_host" in shown, shown
    assert "BUG_SEEN = True" in headless.output(headless.cell(nb, "verdict")), shown
