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

A DevStack host serves `labs/devstack/` instead: its own welcome notebook and one notebook
per bug, on the kernel `debuglab-devstack`, reading the environment that kernel sets
(devstack.kernel_env): the stack folder, the units and their remote-pdb ports, how to
restart a unit and read its journal, DevStack's clouds.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from debuglab.catalog.model import Bug, Catalog
from debuglab.core.kit import Kit

if TYPE_CHECKING:
    import nbformat

KERNEL_NAME = "debuglab"
KERNEL_DISPLAY = "debuglab (nova lab venv)"
DEVSTACK_KERNEL_NAME = "debuglab-devstack"  # a DevStack host's: DevStack's own python
DEVSTACK_KERNEL_DISPLAY = "debuglab (DevStack's python)"
DEVSTACK_LABS = "devstack"  # labs/devstack/: the notebooks a DevStack host serves
KERNEL_DISPLAYS = {KERNEL_NAME: KERNEL_DISPLAY, DEVSTACK_KERNEL_NAME: DEVSTACK_KERNEL_DISPLAY}
LAB_ENV = "DEBUGLAB_LAB"  # the kernel's lab workspace
CLI_ENV = "DEBUGLAB_CLI"  # the debuglab command the notebooks run
WELCOME = "01-welcome.ipynb"


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


def _notebook(prefix: str, cells: list, kernel: str = KERNEL_NAME) -> nbformat.NotebookNode:
    """`kernel`: KERNEL_NAME (a lab's notebooks) or DEVSTACK_KERNEL_NAME (a DevStack host's)."""
    from nbformat import v4  # imported here: nbformat costs ~1 s on every CLI start

    display = KERNEL_DISPLAYS[kernel]
    nb = v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": kernel, "display_name": display, "language": "python"},
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
)
# the questions that fit how the bug hides: its visible tests fail (tier 1), or none does
REFLECTION_BY_TIER = {
    1: ("Some of nova's own unit tests fail with this bug. Which ones, and how much sooner would running them "
        "first (`python -m testtools.run <module>` in your checkout) have led you to the line?",
        "Which debugger command saved you the most time, and which would you use first next time?"),
    2: ("No visible test fails with this bug planted. Which test would have caught it, and why did the one "
        "closest to it not fail?",
        "The wrong value was made in one place and shown in another. Where did you first see it wrong, and "
        "how did you walk back to where it was made?"),
    3: ("No unit test fails, and the code reads right line by line: what state, timing or order of requests "
        "does the bug need, that only the running cloud has?",
        "Which technique showed it to you: remote-pdb into the running service, a conditional breakpoint on "
        "live traffic, or one request id followed through the services' logs? Why would the others have "
        "taken longer?"),
}
# after a reproduce snippet: its verdict (`debuglab reproduce` turns it into the exit code)
VERDICT = ('print("→ the cloud shows the bug" if BUG_SEEN else '
           '"→ the cloud behaves right (fixed, or this bug is not planted here)")')


def fenced(markdown: str) -> str:
    """Indented code blocks as fenced ```console blocks. JupyterLab reads the text between
    two `$` prompts of an indented block as math and keeps its leading spaces (every other
    line of a shell session came out shifted right); it leaves a fenced block alone."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        trailing = []
        while block and not block[-1].strip():  # blank lines after a block are not in it
            trailing.append(block.pop())
        if block:
            out.extend(["```console", *(line[4:] for line in block), "```"])
        out.extend(trailing)
        block.clear()

    after_blank = True
    for line in markdown.split("\n"):
        if line.startswith("    ") and (block or after_blank):
            block.append(line)
        elif block and not line.strip():
            block.append(line)
        else:
            flush()
            out.append(line)
        after_blank = not line.strip()
    flush()
    return "\n".join(out)


def reflection(bug: Bug) -> tuple[str, ...]:
    """The questions at the end of a bug's notebook."""
    return REFLECTION + REFLECTION_BY_TIER[bug.difficulty]


def bug_notebook(bug: Bug, reproduce: str | None) -> nbformat.NotebookNode:
    """The notebook of one bug; `reproduce` is its reproduce snippet, if it has one."""
    techniques = ", ".join(f"`{t}`" for t in bug.techniques)
    cells = [
        _md(f"# {bug.title}\n\n"
            f"Bug `{bug.id}` · {bug.project} {bug.upstream} · difficulty {bug.difficulty}/3\n\n"
            f"Techniques that help here: {techniques} (see the technique labs in `labs/`)."),
        _md("## The story\n\nA user reports:\n\n" + fenced(bug.symptom.strip())),
        _md("## Your lab\n\nRun this first: it finds your lab (the kernel `debuglab` runs the lab's venv, "
            "so `import nova` imports *your* checkout)."),
        _code(SETUP.format(default_lab=_default_lab(2))),
        _md("## Reproduce it\n\nThe mini-cloud must be running (`debuglab cloud start`). "
            "This connects python-novaclient to it:"),
        _code(CLIENT),
        _md("Now the symptom itself. Run it before you change anything, and again after each "
            "`debuglab cloud restart`:"),
        _code(reproduce.strip("\n") if reproduce else GENERIC_REPRODUCE, tags=("reproduce",)),
        *([_code(VERDICT, tags=("verdict",))] if reproduce else []),
        _md("## Debug it\n\n"
            f"- The same check from a terminal: `debuglab reproduce {bug.id}` (exit 1 while the cloud shows "
            "the bug, 0 once it behaves right).\n"
            "- Find the service that runs the code on the request's path: "
            "`debuglab cloud status --file nova/<path>.py`.\n"
            "- Stop in it: `breakpoint()` in a unit test run with `python -m testtools.run`, or "
            "`debuglab cloud restart --debug remote-pdb` and `debuglab attach` for the running service.\n"
            "- After an edit, `debuglab cloud restart` loads it; `git -C lab/stack/nova diff` shows it."
            + ("\n- The logs: nova writes its DEBUG lines only after `debuglab cloud restart --log-level debug` "
               "(`--log-level info` turns them off again); follow one request id through "
               "`lab/cloud/logs/n-api.log`, `n-cond.log`, `n-sch.log` and `n-cpu.log`."
               if "logs" in bug.techniques else "")),
        _md("## Check your fix, and get a hint\n\n"
            "`debuglab check` runs the bug's tests against your change. While the bug is not fixed, each "
            "run reveals the next hint, one at a time: try on your own first."),
        _code(f'!"{{DEBUGLAB}}" check {bug.id} --dir "{{LAB}}"', tags=("check",)),
        _md("## Reflection\n\n" + "\n".join(f"{n}. {q}" for n, q in enumerate(reflection(bug), 1))),
    ]
    return _notebook(bug.id, cells)


WELCOME_CHECK = '''\
# Checks your answers with `debuglab cloud status --file`.
import re, subprocess
FILE = "nova/conductor/tasks/live_migrate.py"
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
            "The bugs planted in your lab, each with its own notebook in `bugs/` beside this one (these notebooks "
            "are your lab's own copy: write in them freely):"),
        _code('!"{DEBUGLAB}" bugs list --dir "{LAB}"'),
        _md("When you think you have fixed one, `debuglab check <bug>` runs its tests against your change "
            "and says *fixed* or *not yet*; while it is not fixed, every run reveals the next hint. "
            "Each bug notebook has a cell for it."),
        _md("## The same from a terminal\n\n"
            "Everything these notebooks do has a command, for a terminal next to your editor "
            "(`source lab/venv/bin/activate` first, or call `.venv/bin/debuglab` of the kit):\n\n"
            "| in a notebook | in a terminal |\n"
            "| --- | --- |\n"
            "| a bug notebook's story | `debuglab bugs show BUG --dir lab` |\n"
            "| its reproduce cell | `debuglab reproduce BUG --dir lab` (exit 1 while the bug shows) |\n"
            "| running nova's tests | `debuglab test nova/scheduler --dir lab` (`--pdb`: post-mortem of the first failure) |\n"
            "| a remote-pdb session | `debuglab attach --dir lab` (or `--command 'p x' --command c`) |\n"
            "| nova's DEBUG log lines | `debuglab cloud restart --dir lab --log-level debug` |\n"
            "| the check cell | `debuglab check BUG --dir lab` |\n"),
        _md("## Exercise\n\n"
            "Which nova service runs `nova/conductor/tasks/live_migrate.py`, and what is the pid of the process that "
            "runs it? Use the commands above, fill in your answer and run the check."),
        _code('SERVICE = ""   # e.g. "n-api"\nPID = 0', tags=("answer",)),
        _code(WELCOME_CHECK, tags=("check",)),
    ]
    return _notebook("welcome", cells)


# --------------------------------------------------------------------------- a DevStack host's notebooks
# labs/devstack/: nova in $DEBUGLAB_STACK/nova, run by systemd units; the kernel
# `debuglab-devstack` (DevStack's python) sets the environment these cells read
# (devstack.kernel_env).

DEVSTACK_SETUP = '''\
# Where DevStack is: the kernel `debuglab-devstack` (DevStack's own python) says so.
import os, pathlib, sys
assert "DEBUGLAB_STACK" in os.environ, "run this notebook on the kernel `debuglab-devstack` (Kernel > Change Kernel)"
STACK = pathlib.Path(os.environ["DEBUGLAB_STACK"])  # DevStack's stack folder: /opt/stack
NOVA = STACK / "nova"                                # nova's source, the code the units run
UNITS = {unit: int(port) for unit, port in         # systemd unit -> its remote-pdb port
         (item.split("=") for item in os.environ["DEBUGLAB_UNITS"].split(",") if item)}
CLOUDS_YAML = pathlib.Path(os.environ["OS_CLIENT_CONFIG_FILE"])
DEBUGLAB = os.environ.get("DEBUGLAB_CLI", "debuglab")
assert (NOVA / "nova" / "__init__.py").is_file(), f"no nova checkout in {NOVA}"
import nova
imported = pathlib.Path(nova.__file__).resolve()
assert imported.is_relative_to(NOVA.resolve()), f"nova is imported from {imported}, not from {NOVA}"
print("python:", sys.executable)
print("nova checkout:", NOVA)
print("nova is imported from", NOVA / imported.relative_to(NOVA.resolve()))'''

DEVSTACK_HELPERS = '''\
# Two helpers you reuse: restart units after an edit, read the end of a unit's journal.
import shlex, subprocess

def restart(*units):
    """Restart these systemd units (all of UNITS when none is named): they load your edited code."""
    command = os.environ["DEBUGLAB_RESTART"].format(units=" ".join(shlex.quote(u) for u in units or UNITS))
    print("$", command)
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="")
    print("done" if done.returncode == 0 else f"failed (exit status {done.returncode})")

def journal(unit, lines=20):
    """The last `lines` lines of a unit's log (systemd's journal)."""
    command = os.environ["DEBUGLAB_JOURNAL"].format(unit=shlex.quote(unit), lines=int(lines))
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    print(done.stdout + done.stderr, end="")
    if done.returncode != 0:
        print(f"$ {command}: failed (exit status {done.returncode})")

print("restart(*units) and journal(unit, lines=20) are ready")'''

DEVSTACK_CLIENT = '''\
# python-novaclient, authenticated as DevStack's admin with DevStack's clouds.yaml
# (OS_CLIENT_CONFIG_FILE; the cloud "devstack" is the demo user).
import yaml
from keystoneauth1 import loading, session
import novaclient
from novaclient import client

cloud = yaml.safe_load(CLOUDS_YAML.read_text())["clouds"]["devstack-admin"]
auth = loading.get_plugin_loader("password").load_from_options(**cloud["auth"])
sess = session.Session(auth=auth, verify=cloud.get("cacert", True))
nova = client.Client(novaclient.API_MAX_VERSION.get_string(), session=sess,
                     region_name=cloud["region_name"])
print("nova API:", sess.get_endpoint(service_type="compute", interface="public"))'''

DEVSTACK_GENERIC_REPRODUCE = '''\
# Reproduce the symptom described above with `nova` (the client of the cell before),
# or from a terminal with `export OS_CLOUD=devstack-admin` and the `openstack` or `nova`
# commands. Start with what the story shows, then vary it.
print("servers:", [s.name for s in nova.servers.list()])'''

DEVSTACK_UNITS_TABLE = '''\
# Each nova unit, its remote-pdb port, and whether something listens there now: a unit
# stopped at a breakpoint() waits on its port for you. (Read from the kernel's table of
# sockets: a test connection would take the one session remote-pdb offers.)
def listening(port):
    """True when a socket listens on 127.0.0.1:port (or on every address)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False

print(f"{'unit':24} {'remote-pdb':>10}  listening now?")
for unit, port in UNITS.items():
    print(f"{unit:24} {port:>10}  {'yes: a breakpoint() waits for you' if listening(port) else 'no'}")'''

DEVSTACK_WELCOME_CHECK = '''\
# Checks your answers against nova's own route table and the table of units.
import inspect, warnings
with warnings.catch_warnings():  # importing the API warns that eventlet is deprecated: not your concern here
    warnings.simplefilter("ignore")
    from nova.api.openstack.compute import routes
API_UNIT = "devstack@n-api"  # the unit that runs nova's REST API (its wsgi app)
served_by = dict(routes.ROUTE_LIST)["/servers/{id}"]["GET"][0].args[0]  # the controller class
truth = pathlib.Path(inspect.getsourcefile(served_by)).resolve().relative_to(NOVA.resolve()).as_posix()
FILE, UNIT, PORT = (globals().get(name) for name in ("FILE", "UNIT", "PORT"))  # unset: no answer yet
given = pathlib.Path(os.path.expanduser(str(FILE or "")))
if given.is_absolute() and given.resolve().is_relative_to(NOVA.resolve()):
    given = given.resolve().relative_to(NOVA.resolve())
if not FILE or not UNIT or not PORT:
    print("✗ no answer yet: fill in FILE, UNIT and PORT above")
elif given.as_posix() != truth:
    print(f"✗ {FILE} does not define the class that serves GET /servers/{{id}}: "
          f"nova's URL routes are in nova/api/openstack/compute/routes.py")
elif UNIT != API_UNIT:
    print(f"✗ right file; but {UNIT!r} does not run nova's REST API: look again at the table of units")
elif str(PORT).strip() != str(UNITS.get(UNIT)):
    print(f"✗ right file and unit; but {UNIT}'s remote-pdb does not listen on {PORT}: look at the table of units")
else:
    print(f"✓ right: {truth} (class {served_by.__name__}) runs in {UNIT}; a breakpoint() there "
          f"opens remote-pdb on 127.0.0.1:{PORT}. You know your way around DevStack.")'''


def devstack_welcome_notebook() -> nbformat.NotebookNode:
    """labs/devstack/01-welcome.ipynb: the map of a DevStack host, for a student new to nova."""
    cells = [
        _md("# Welcome to debuglab on DevStack\n\n"
            "This host runs DevStack: a real OpenStack, with nova's services as systemd units. In this class "
            "you hunt bugs planted in nova's code. This notebook is the map: where the code is, which unit runs "
            "it, how to restart a unit after an edit, read its log, see your change and stop a running unit "
            "in the debugger. It ends with a small exercise.\n\n"
            "Run the cells in order (Shift-Enter). Lines starting with `!` run a shell command."),
        _code(DEVSTACK_SETUP),
        _md("## Where things are\n\n"
            "The kernel of this notebook (`debuglab-devstack`) is DevStack's own python: `import nova` here "
            "imports exactly the code the units run.\n\n"
            "| what | where | from a terminal |\n| --- | --- | --- |\n"
            "| nova's source, a git checkout: edit it here | `/opt/stack/nova` (`NOVA`) | `cd /opt/stack/nova` |\n"
            "| DevStack's python, with nova installed from that checkout | `/opt/stack/data/venv/bin/python` "
            "| `/opt/stack/data/venv/bin/python` |\n"
            "| credentials for the clients | `/etc/openstack/clouds.yaml` (`CLOUDS_YAML`) | "
            "`export OS_CLOUD=devstack-admin` |\n"
            "| nova's services | systemd units `devstack@n-api`, `devstack@n-sch`, ... (`UNITS`) | "
            "`systemctl status 'devstack@n-*'` |\n"
            "| each unit's log | systemd's journal | `sudo journalctl -u devstack@n-api -n 20` |\n\n"
            "nova is several services. The API (`devstack@n-api`) takes the REST requests; the scheduler "
            "(`devstack@n-sch`) picks a host for a new server; the conductors (`devstack@n-super-cond`, "
            "`devstack@n-cond-cell1`) coordinate and talk to the database; the compute service "
            "(`devstack@n-cpu`) runs the servers; `devstack@n-api-meta` answers servers asking for their "
            "metadata. A breakpoint only stops in the unit that runs that code."),
        _md("## The units and their debugger ports\n\n"
            "Each unit's `breakpoint()` opens remote-pdb, the Python debugger on a socket, on a port of its own "
            "on 127.0.0.1:"),
        _code(DEVSTACK_UNITS_TABLE),
        _md("## Restart a unit, read its log\n\n"
            "A unit loads nova's code when it starts: after every edit, restart the units that run it. "
            "These two helpers do it from a notebook (they print the command they run, so you can type it "
            "in a terminal too):"),
        _code(DEVSTACK_HELPERS),
        _code('journal("devstack@n-api", lines=10)'),
        _md("`restart(\"devstack@n-api\")` restarts one unit; `restart()` restarts every nova unit."),
        _md("## Your change\n\n"
            "The checkout's one commit is the class's baseline, so `git diff` shows exactly your own change "
            "(nothing yet):"),
        _code('!git -C "{NOVA}" status --short\n!git -C "{NOVA}" diff --stat'),
        _md("## Debug a running unit, step by step\n\n"
            "1. In a terminal (JupyterLab: File > New > Terminal), open "
            "`/opt/stack/nova/nova/api/openstack/compute/servers.py`, find `def show(self, req, id):` in "
            "`ServersController`, and make `breakpoint()` its first line (same indentation as the code below it).\n"
            "2. Restart the unit that runs the API, here or in the terminal: `restart(\"devstack@n-api\")`. "
            "`journal(\"devstack@n-api\")` shows it started again.\n"
            "3. Make a request that reaches `show`: in the terminal, `export OS_CLOUD=devstack-admin` and "
            "`openstack server show anything`. It hangs: n-api stopped at your breakpoint.\n"
            "4. In a second terminal, `nc 127.0.0.1 4444` (or `telnet 127.0.0.1 4444`; 4444 is n-api's port in "
            "the table above): the `(Pdb)` prompt of n-api. Try `where`, `p id`, `p req.environ['nova.context'].project_id`, `n`, and `c` to let "
            "the request go on. From your laptop, `debuglab tunnel STUDENT` (your instructor gives you the "
            "command) forwards every unit's port: `nc 127.0.0.1 4444` works there too.\n"
            "5. Clean up: delete the `breakpoint()` line (`git -C /opt/stack/nova diff` shows nothing again) "
            "and restart the unit once more. A breakpoint left in place makes every such request wait.\n\n"
            "The port is that unit's in the table above: a breakpoint in the scheduler's code opens "
            "`devstack@n-sch`'s port, and so on."),
        _md("## Exercise\n\n"
            "Which file under `/opt/stack/nova` defines the class that serves `GET /servers/{id}` (what "
            "`openstack server show` asks), which unit runs it, and so on which port does a `breakpoint()` "
            "there open remote-pdb? Fill in your answer and run the check (no cloud needed: it reads nova's "
            "own code)."),
        _code('FILE = ""   # e.g. "nova/conductor/tasks/live_migrate.py" (a path under /opt/stack/nova)\n'
              'UNIT = ""   # e.g. "devstack@n-sch"\nPORT = 0', tags=("answer",)),
        _code(DEVSTACK_WELCOME_CHECK, tags=("check",)),
        _md("## Next\n\n"
            "`02-remote-pdb.ipynb` walks through debugging a running unit with a real request: the request "
            "context, the instance nova read, the policy check. `03-ide-debuggers.ipynb` connects PyCharm "
            "and VS Code to `devstack@n-api`, as the 2016 Barcelona hands-on did with PyCharm.\n\n"
            "Each bug of the class has its notebook in `bugs/`: the story, a cell that reproduces it, and "
            "the unit to debug. When you have fixed one, your instructor collects your change "
            "(`git diff` of the checkout) and grades it."),
    ]
    return _notebook("welcome", cells, kernel=DEVSTACK_KERNEL_NAME)


DEVSTACK_REFLECTION = (
    "What did you observe first, and which observation told you where to look?",
    "Where on the request's way through nova did the wrong behaviour first appear, and how did you narrow it down?",
    "Which unit ran the code you changed, and how did you know: the port your breakpoint opened, "
    "or the journal of which unit?",
)


def _devstack_debug_cells(bug: Bug) -> list:
    """"Debug it on DevStack": every nova unit and its port, read at run time. Which unit
    runs the faulty code is for the student to find (the layer is the instructor's)."""
    if bug.project != "nova":
        return [
            _md("## Debug it on DevStack\n\n"
                f"This bug's code ({bug.project}) is the client: it runs right here, in this notebook's "
                "kernel, not in a nova unit. Stop in it with `import pdb; pdb.runcall(function, ...)` or "
                "`import pdb; pdb.set_trace()` before the call. After an edit, Kernel > Restart Kernel loads "
                f"it (then run the cells above again); `git -C /opt/stack/{bug.project} diff` shows it."),
        ]
    return [
        _md("## Debug it on DevStack\n\n"
            "nova's code runs in the units below; which of them runs the code behind this story is yours to "
            "find (the journals and a `breakpoint()` tell). A `breakpoint()` opens remote-pdb on the port of "
            "the unit that reached it (`nc 127.0.0.1 PORT` in a terminal, as in `01-welcome.ipynb`); after "
            "each edit, restart the units, then run the reproduce cell again."),
        _code("BUG_UNITS = list(UNITS)  # every nova unit\n"
              "for unit in BUG_UNITS:\n"
              "    port = UNITS.get(unit)\n"
              "    print(f\"{unit:24} remote-pdb: \" + (f\"nc 127.0.0.1 {port}\" if port else \"no port on this host\"))"),
        _code("# the end of each unit's log: a traceback, or your request going through\n"
              "for unit in BUG_UNITS:\n"
              "    print(f\"--- {unit}\")\n"
              "    journal(unit, lines=10)"),
        _md("After an edit (and once more after you remove a `breakpoint()`), run this: it loads your code."),
        _code("restart(*BUG_UNITS)", tags=("restart",)),
    ]


def devstack_bug_notebook(bug: Bug, reproduce: str | None) -> nbformat.NotebookNode:
    """A bug's notebook on a DevStack host (labs/devstack/bugs/<id>.ipynb); shows what
    `bugs show` shows, like bug_notebook."""
    techniques = ", ".join(f"`{t}`" for t in bug.techniques)
    cells = [
        _md(f"# {bug.title}\n\n"
            f"Bug `{bug.id}` · {bug.project} {bug.upstream} · difficulty {bug.difficulty}/3\n\n"
            f"Techniques that help here: {techniques} (`01-welcome.ipynb` shows how to stop a running unit "
            "in the debugger)."),
        _md("## The story\n\nA user reports:\n\n" + fenced(bug.symptom.strip())),
        _md("## Your DevStack\n\nRun these first: they find DevStack (the kernel `debuglab-devstack` is "
            "DevStack's python, so `import nova` imports the code the units run) and define `restart()` and "
            "`journal()`."),
        _code(DEVSTACK_SETUP),
        _code(DEVSTACK_HELPERS),
        _md("## Reproduce it\n\nDevStack must be running (`systemctl status 'devstack@*'`). "
            "This connects python-novaclient to it:"),
        _code(DEVSTACK_CLIENT),
        _md("Now the symptom itself. Run it before you change anything, and again after each restart:"),
        _code(reproduce.strip("\n") if reproduce else DEVSTACK_GENERIC_REPRODUCE, tags=("reproduce",)),
        *_devstack_debug_cells(bug),
        _md("## Check your fix\n\n"
            "There is no `debuglab check` on a DevStack host. Check it yourself: restart the unit(s), run the "
            "reproduce cell again: the symptom should be gone. Your instructor then collects your change (`debuglab "
            "collect`: the `git diff` of each checkout against the class's baseline) and grades it with the "
            "bug's tests. This is exactly what will be collected:"),
        _code(f'!git -C "{{STACK}}/{bug.project}" status --short\n!git -C "{{STACK}}/{bug.project}" diff --stat'),
        _md("## Reflection\n\n" + "\n".join(f"{n}. {q}" for n, q in enumerate(DEVSTACK_REFLECTION + REFLECTION_BY_TIER[bug.difficulty], 1))),
    ]
    return _notebook(bug.id, cells, kernel=DEVSTACK_KERNEL_NAME)


def dumps(nb: nbformat.NotebookNode) -> str:
    import nbformat

    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def generate(kit: Kit | None = None) -> dict[Path, str]:
    """Every student notebook, by its path relative to the kit, as the text to store."""
    kit = kit or Kit.default()
    devstack = Path("labs") / DEVSTACK_LABS
    out = {Path("labs") / WELCOME: dumps(welcome_notebook()), devstack / WELCOME: dumps(devstack_welcome_notebook())}
    for bug in Catalog.load(kit.bugs_dir).bugs.values():
        snippet = kit.root / "labs" / "reproduce" / f"{bug.id}.py"
        reproduce = snippet.read_text() if snippet.is_file() else None
        out[Path("labs") / "bugs" / f"{bug.id}.ipynb"] = dumps(bug_notebook(bug, reproduce))
        # a snippet that needs what only a lab has (its local.conf, `debuglab cloud`) has a
        # DevStack version beside it
        on_devstack = kit.root / "labs" / "reproduce" / DEVSTACK_LABS / f"{bug.id}.py"
        if on_devstack.is_file():
            reproduce = on_devstack.read_text()
        out[devstack / "bugs" / f"{bug.id}.ipynb"] = dumps(devstack_bug_notebook(bug, reproduce))
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
