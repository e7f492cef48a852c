"""The student's notebooks: `labs/01-welcome.ipynb` and one notebook per bug
(`labs/bugs/<id>.ipynb`), generated from the catalog, plus the Jupyter kernel `debuglab`
that runs the lab venv.

Generation is deterministic (fixed cell ids, no outputs), so a test can compare the
committed notebooks with `generate(kit)`. A bug notebook shows only what `bugs show`
shows (the story and the symptom, the techniques): hints are revealed one at a time by
`debuglab check`, and the scope, the tests and the fix never appear.

A bug's reproduce cell comes from `labs/reproduce/<id>.py` when that file exists (a
snippet that uses `nova`, the python-novaclient client of the setup cell); a bug without
one gets a cell that connects and leaves the reproduction to the student.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from debuglab.catalog import Bug, Catalog
from debuglab.errors import DebuglabError
from debuglab.kit import Kit
from debuglab.workspace import Workspace

if TYPE_CHECKING:
    import nbformat

KERNEL_NAME = "debuglab"
KERNEL_DISPLAY = "debuglab (nova lab venv)"
LAB_ENV = "DEBUGLAB_LAB"  # the kernel's lab workspace
CLI_ENV = "DEBUGLAB_CLI"  # the debuglab command the notebooks run
WELCOME = "01-welcome.ipynb"


class NotebookError(DebuglabError):
    """A notebook or the Jupyter kernel cannot be written or served."""


# --------------------------------------------------------------------------- cells shared by every notebook

SETUP = '''\
# Where your lab is: the `debuglab` kernel says so; otherwise ./lab beside this kit.
import os, pathlib, shutil
LAB = pathlib.Path(os.environ.get("DEBUGLAB_LAB") or "{default_lab}").resolve()
DEBUGLAB = os.environ.get("DEBUGLAB_CLI") or shutil.which("debuglab") or "debuglab"
NOVA = LAB / "stack" / "nova"
os.environ["TTY_INTERACTIVE"] = "0"  # no live progress bars from `!debuglab ...` in a notebook
assert (LAB / "lab.toml").is_file(), f"no lab in {{LAB}}: run `debuglab up` first"
print("lab:", LAB)
print("nova checkout:", NOVA)'''

CLIENT = '''\
# python-novaclient, authenticated as DevStack's admin with the lab's clouds.yaml
# (`debuglab cloud start` writes it; the cloud "devstack" is the demo user).
import yaml
from keystoneauth1 import loading, session
import novaclient
from novaclient import client

cloud = yaml.safe_load((LAB / "clouds.yaml").read_text())["clouds"]["devstack-admin"]
auth = loading.get_plugin_loader("password").load_from_options(**cloud["auth"])
sess = session.Session(auth=auth)
nova = client.Client(novaclient.API_MAX_VERSION.get_string(), session=sess,
                     region_name=cloud["region_name"])
print("nova API:", sess.get_endpoint(service_type="compute", interface="public"))'''

GENERIC_REPRODUCE = '''\
# Reproduce the symptom described above with `nova` (the client of the cell before),
# or from a terminal with `source lab/openrc admin admin` and the `nova` or
# `openstack` commands. Start with what the story shows, then vary it.
print("servers:", [s.name for s in nova.servers.list()])'''


def _default_lab(depth: int) -> str:
    return "/".join([".."] * depth + ["lab"])


# --------------------------------------------------------------------------- building notebooks


def _notebook(prefix: str, cells: list) -> nbformat.NotebookNode:
    from nbformat import v4  # imported here: nbformat costs ~1 s on every CLI start

    nb = v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY, "language": "python"},
        "language_info": {"name": "python"},
    }
    for n, cell in enumerate(cells, 1):
        cell.id = f"{prefix}-{n:02d}"
    nb.cells = cells
    return nb


def _md(text: str):
    from nbformat import v4

    return v4.new_markdown_cell(text.strip("\n"))


def _code(text: str, tags: tuple[str, ...] = ()):
    from nbformat import v4

    cell = v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


REFLECTION = (
    "What did you observe first, and which observation told you where to look?",
    "Where on the request's way through nova did the wrong behaviour first appear, and how did you narrow it down?",
    "Which nova service ran the code you changed? Check it with "
    "`debuglab cloud status --file <the file you changed>`.",
    "Which existing test would have caught this bug, and why did it not run, or not fail?",
    "Which debugger command saved you the most time, and which would you use first next time?",
)


def bug_notebook(bug: Bug, reproduce: str | None) -> nbformat.NotebookNode:
    """The notebook of one bug; `reproduce` is its reproduce snippet, if it has one."""
    techniques = ", ".join(f"`{t}`" for t in bug.techniques)
    cells = [
        _md(f"# {bug.title}\n\n"
            f"Bug `{bug.id}` · {bug.project} {bug.upstream} · difficulty {bug.difficulty}/3 · "
            f"layer: {bug.layer}\n\n"
            f"Techniques that help here: {techniques} (see the technique labs in `labs/`)."),
        _md("## The story\n\nA user reports:\n\n" + bug.symptom.strip()),
        _md("## Your lab\n\nRun this first: it finds your lab (the kernel `debuglab` runs the lab's venv, "
            "so `import nova` imports *your* checkout)."),
        _code(SETUP.format(default_lab=_default_lab(2))),
        _md("## Reproduce it\n\nThe mini-cloud must be running (`debuglab cloud start`). "
            "This connects python-novaclient to it:"),
        _code(CLIENT),
        _md("Now the symptom itself. Run it before you change anything, and again after each "
            "`debuglab cloud restart`:"),
        _code(reproduce.strip("\n") if reproduce else GENERIC_REPRODUCE, tags=("reproduce",)),
        _md("## Debug it\n\n"
            "- Find the service that runs the code on the request's path: "
            "`debuglab cloud status --file nova/<path>.py`.\n"
            "- Stop in it: `breakpoint()` in a unit test run with `python -m testtools.run`, or "
            "`debuglab cloud restart --debug remote-pdb` and `debuglab attach` for the running service.\n"
            "- After an edit, `debuglab cloud restart` loads it; `git -C lab/stack/nova diff` shows it."),
        _md("## Check your fix, and get a hint\n\n"
            "`debuglab check` runs the bug's tests against your change. While the bug is not fixed, each "
            "run reveals the next hint, one at a time: try on your own first."),
        _code(f'!"{{DEBUGLAB}}" check {bug.id} --dir "{{LAB}}"', tags=("check",)),
        _md("## Reflection\n\n" + "\n".join(f"{n}. {q}" for n, q in enumerate(REFLECTION, 1))),
    ]
    return _notebook(bug.id, cells)


WELCOME_CHECK = '''\
# Checks your answers with `debuglab cloud status --file`.
import re, subprocess
FILE = "nova/conductor/manager.py"
out = subprocess.run([DEBUGLAB, "cloud", "status", "--dir", str(LAB), "--file", FILE],
                     capture_output=True, text=True).stdout
found = dict(re.findall(r"([\\w-]+) \\(pid (\\d+)\\)", out.split("runs in:")[-1]))
if not SERVICE:
    print("✗ no answer yet: fill in SERVICE and PID above")
elif SERVICE not in found:
    print(f"✗ {FILE} does not run in {SERVICE!r}: look again at the table of services")
elif str(PID) != found[SERVICE]:
    print(f"✗ right service; but {SERVICE} does not run in pid {PID} (is the cloud running?)")
else:
    print(f"✓ right: {FILE} runs in {SERVICE}, pid {PID}. You know your way around the lab.")'''


def welcome_notebook() -> nbformat.NotebookNode:
    cells = [
        _md("# Welcome to debuglab\n\n"
            "In this lab you hunt real bugs in real nova code. This notebook is the map: where the code is, "
            "which nova service runs which file, how to start, stop and restart the cloud, how to see your "
            "change and how to check a fix. It ends with a small exercise.\n\n"
            "Run the cells in order (Shift-Enter). Lines starting with `!` run a shell command."),
        _code(SETUP.format(default_lab=_default_lab(1))),
        _md("## Where the code is\n\n"
            "The lab is shaped like a DevStack host:\n\n"
            "| path | what it is | DevStack's |\n| --- | --- | --- |\n"
            "| `lab/stack/nova` | nova's source, a git checkout: edit it here | `/opt/stack/nova` |\n"
            "| `lab/stack/python-novaclient` | the client library and the `nova` command | "
            "`/opt/stack/python-novaclient` |\n"
            "| `lab/venv` | one Python with both checkouts installed editable | the system's python |\n"
            "| `lab/openrc`, `lab/clouds.yaml` | credentials for the clients | `devstack/openrc` |\n"
            "| `lab/cloud/logs` | one log per service | `journalctl -u devstack@n-api` |"),
        _code('!ls "{LAB}" "{LAB}/stack"\n'
              'import nova\nprint("nova is imported from", nova.__file__)'),
        _md("## Which service runs which file\n\n"
            "nova is several services: the API (`n-api`), the conductor (`n-cond`), the scheduler (`n-sch`) "
            "and the compute service (`n-cpu`), beside Keystone and placement. A breakpoint only stops in "
            "the service that runs that code. Ask the lab:"),
        _code('!"{DEBUGLAB}" cloud status --dir "{LAB}" --file nova/api/openstack/compute/servers.py'),
        _md("## Start, stop, restart\n\n"
            "From a terminal (the cloud keeps running when you close this notebook):\n\n"
            "```sh\n"
            "debuglab cloud start             # Keystone, nova, placement on 127.0.0.1\n"
            "debuglab cloud stop\n"
            "debuglab cloud restart           # after every edit: loads your changed code\n"
            "debuglab cloud restart --debug remote-pdb   # breakpoint() in a service opens remote-pdb\n"
            "debuglab attach                  # ... and this attaches to it\n"
            "debuglab cloud logs n-api -n 20  # the end of a service's log\n"
            "```\n\n"
            "The services answer on the ports the status table shows. From python, the client talks to them "
            "like any OpenStack client:"),
        _code(CLIENT),
        _code('for svc in nova.services.list():\n'
              '    print(f"{svc.binary:16} {svc.host:10} {svc.state}")'),
        _md("## Your change\n\n"
            "Each checkout's one commit is the lab's baseline, so `git diff` shows exactly your own change "
            "(nothing yet):"),
        _code('!git -C "{NOVA}" status --short\n!git -C "{NOVA}" diff --stat'),
        _md("## Checking a fix\n\n"
            "The bugs of the catalog, each with its own notebook in `labs/bugs/` (your lab holds those `lab.toml` lists):"),
        _code('!"{DEBUGLAB}" bugs list'),
        _md("When you think you have fixed one, `debuglab check <bug>` runs its tests against your change "
            "and says *fixed* or *not yet*; while it is not fixed, every run reveals the next hint. "
            "Each bug notebook has a cell for it."),
        _md("## Exercise\n\n"
            "Which nova service runs `nova/conductor/manager.py`, and what is the pid of the process that "
            "runs it? Use the commands above, fill in your answer and run the check."),
        _code('SERVICE = ""   # e.g. "n-api"\nPID = 0', tags=("answer",)),
        _code(WELCOME_CHECK, tags=("check",)),
    ]
    return _notebook("welcome", cells)


def dumps(nb: nbformat.NotebookNode) -> str:
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def generate(kit: Kit | None = None) -> dict[Path, str]:
    """Every student notebook, by its path relative to the kit, as the text to store."""
    kit = kit or Kit.default()
    out = {Path("labs") / WELCOME: dumps(welcome_notebook())}
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        snippet = kit.root / "labs" / "reproduce" / f"{bug.id}.py"
        reproduce = snippet.read_text() if snippet.is_file() else None
        out[Path("labs") / "bugs" / f"{bug.id}.ipynb"] = dumps(bug_notebook(bug, reproduce))
    return out


def write(kit: Kit | None = None) -> list[Path]:
    """(Re)write the committed notebooks; returns those that changed."""
    kit = kit or Kit.default()
    changed = []
    for rel, text in generate(kit).items():
        path = kit.root / rel
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            changed.append(path)
    return changed


# --------------------------------------------------------------------------- the Jupyter kernel


def jupyter_dir(ws: Workspace) -> Path:
    """The lab's Jupyter data folder: put it on JUPYTER_PATH to see the `debuglab` kernel."""
    return ws.root / "jupyter"


def debuglab_cli() -> str:
    """The debuglab command of this installation (the notebooks' `!debuglab ...`)."""
    beside = Path(sys.executable).parent / "debuglab"
    if beside.is_file():
        return str(beside)
    found = shutil.which("debuglab")
    if not found:
        raise NotebookError("cannot find the debuglab command: install the kit with `pip install -e .`")
    return found


def kernel_spec(ws: Workspace) -> dict:
    return {
        "argv": [str(ws.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY,
        "language": "python",
        "env": {
            LAB_ENV: str(ws.root),
            CLI_ENV: debuglab_cli(),
            "OS_CLIENT_CONFIG_FILE": str(ws.root / "clouds.yaml"),
        },
        "metadata": {"debugger": True},
    }


def register_kernel(ws: Workspace) -> Path:
    """Write the kernelspec `debuglab` (the lab venv's python) into <lab>/jupyter/kernels;
    returns its folder. Jupyter finds it with JUPYTER_PATH=<lab>/jupyter (see jupyter_env)."""
    if not ws.python.exists():
        raise NotebookError(f"{ws.python}: the lab has no venv; rebuild it with `debuglab lab create --force`")
    folder = jupyter_dir(ws) / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "kernel.json.partial"
    tmp.write_text(json.dumps(kernel_spec(ws), indent=2) + "\n")
    tmp.replace(folder / "kernel.json")
    return folder


def jupyter_env(ws: Workspace) -> dict[str, str]:
    """Environment entries that make Jupyter (and nbclient) find the lab's kernel."""
    paths = [str(jupyter_dir(ws))]
    if os.environ.get("JUPYTER_PATH"):
        paths.append(os.environ["JUPYTER_PATH"])
    return {"JUPYTER_PATH": os.pathsep.join(paths)}


# JupyterLab itself (serving labs/ with this kernel, as a service of the lab): debuglab.jupyterlab


if __name__ == "__main__":  # python -m debuglab.notebooks: regenerate the committed notebooks
    for changed in write():
        print("wrote", changed)
