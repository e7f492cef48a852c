"""A bug's symptom, shown on the running mini-cloud from a terminal: `debuglab reproduce ID`.

Each bug has `labs/reproduce/<id>.py`, the snippet its notebook's reproduce cell runs.
Here it runs after the same setup cells (the lab, python-novaclient as admin), in the
lab venv, and its verdict becomes the exit code: a script ends by setting
`BUG_SEEN = True` (the cloud shows the bug) or `False` (it behaves right).

Exit codes: 0 behaves right, 1 shows the bug, 3 the script could not tell (it raised,
or never set BUG_SEEN); a missing script or a stopped cloud is an error before anything runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from debuglab.catalog.model import Bug
from debuglab.cloud import supervisor
from debuglab.core import proc
from debuglab.core.errors import ProcError
from debuglab.core.kit import Kit
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, kernel
from debuglab.verify.errors import ReproduceError

VERDICT = "BUG_SEEN"
RIGHT, SHOWN, UNDECIDED = 0, 1, 3
TIMEOUT = 300  # seconds; a script's own budget is 60 s, a periodic task's wait included

# Runs in the lab venv: argv[1] is the snippet. The setup cells and the snippet run at
# module level, as in a notebook; only the verdict decides the exit code.
_PROGRAM = '''\
import sys, traceback
try:
    exec(compile({prelude!r}, "<the notebook's setup cells>", "exec"))
    exec(compile(open(sys.argv[1]).read(), sys.argv[1], "exec"))
except Exception:
    traceback.print_exc()
    print("reproduce: the script failed before it could tell", flush=True)
    sys.exit({undecided})
if not isinstance(globals().get("{verdict}"), bool):
    print("reproduce: the script did not set {verdict} to True or False", flush=True)
    sys.exit({undecided})
sys.exit({shown} if {verdict} else {right})
'''


@dataclass(frozen=True)
class Reproduction:
    bug_id: str
    exit_code: int  # RIGHT, SHOWN or UNDECIDED
    output: str
    seconds: float

    @property
    def bug_seen(self) -> bool | None:
        return {RIGHT: False, SHOWN: True}.get(self.exit_code)


def script(bug: Bug, kit: Kit | None = None) -> Path:
    """labs/reproduce/<id>.py; ReproduceError when the bug has none."""
    path = (kit or Kit.default()).root / "labs" / "reproduce" / f"{bug.id}.py"
    if not path.is_file():
        raise ReproduceError(f"bug '{bug.id}' has no reproduce script ({path} is missing)")
    return path


def program() -> str:
    """The python program that runs a snippet as the bug's notebook does."""
    prelude = content.SETUP.format(default_lab="lab") + "\n" + content.CLIENT + "\n"
    return _PROGRAM.format(prelude=prelude, verdict=VERDICT, undecided=UNDECIDED, shown=SHOWN, right=RIGHT)


def run(ws: Workspace, bug: Bug, *, kit: Kit | None = None, timeout: float = TIMEOUT) -> Reproduction:
    """Run the bug's script against the lab's running cloud."""
    path = script(bug, kit)
    if supervisor.read_state(ws) is None:
        raise ReproduceError(f"the mini-cloud of {ws.root} is not running: start it with "
                             f"`debuglab cloud start --dir {quote(str(ws.root))}`")
    env = {content.LAB_ENV: str(ws.root), content.CLI_ENV: kernel.debuglab_cli(),
           "OS_CLIENT_CONFIG_FILE": str(ws.root / "clouds.yaml"), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    try:
        done = proc.run([ws.python, "-c", program(), path], cwd=ws.root, env=env, timeout=timeout, check=False)
    except ProcError as exc:  # timed out: the output so far is the student's clue
        return Reproduction(bug.id, UNDECIDED, exc.output + f"\nreproduce: no verdict within {timeout:.0f} s",
                            time.monotonic() - start)
    code = done.returncode if done.returncode in (RIGHT, SHOWN) else UNDECIDED
    return Reproduction(bug.id, code, done.output, time.monotonic() - start)
