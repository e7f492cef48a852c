"""Execute a notebook headless on the lab's `debuglab` kernel, answering the cells that
wait for keyboard input (pdb's prompt, `input()`) from a script kept in the cell.

Why: a technique lab teaches debugger commands; CI must prove that each command still
works. The student types the commands into the prompt JupyterLab shows; here the same
commands reach the same real pdb through the kernel's real stdin channel
(`input_request` / `input_reply`), so a notebook that teaches a command that no longer
works fails CI.

Usage (labs and tests):

    from debuglab.notebooks import headless
    nb = headless.run(ws, Path("labs/02-pdb.ipynb"))          # or an nbformat NotebookNode
    text = headless.output(headless.cell(nb, "pdb-where"))       # by cell id or tag

- A cell's script: `cell.metadata["debuglab"]["stdin"] = ["where", "p flavor.root_gb", "c"]`,
  one line per prompt, in order. `headless.set_stdin(cell, [...])` sets it.
- The transcript is part of the cell's output, as JupyterLab shows it: each answered
  prompt appears as `<prompt><line>` (e.g. `ipdb> p x`) before what the command printed.
- Failures raise LabRunError subclasses naming the notebook and the cell id:
  ScriptExhausted (the cell asked for more input than its script holds; the kernel gets
  EOF, so pdb quits and `input()` raises EOFError: never a hang), ScriptLeftOver (the cell
  ended with lines unused: e.g. a breakpoint no longer hit), CellFailed (the cell raised;
  tag a cell `raises-exception` when that is the lesson), CellTimedOut.
- Timeout per cell: `timeout=` (default 120 s), or `cell.metadata["debuglab"]["timeout"]`.
- `cwd` defaults to the notebook's folder; `env` adds variables to the kernel's environment
  (e.g. {"PYTHONBREAKPOINT": "0"}).
- The kernel is the lab's (`kernel.register_kernel(ws)` is called for you); the cloud is
  not started: start it yourself when a notebook needs it.
- Re-run part of a lab (an exercise with another answer): copy the cells you need into a new
  notebook (unique ids) and run that; tests/test_labs_pdb.py `subset()` does it.
- Instructors: `debuglab notebook check [--dir LAB] [PATH...]` runs every technique lab
  (labs/NN-*.ipynb) this way and prints a table (`check()` here).

Two facts of the kernel a lab must know (both real, both shown in labs/02-pdb.ipynb):
- ipykernel imports debugpy (JupyterLab's visual debugger), which replaces
  `sys.breakpointhook`: a bare `breakpoint()` in a cell does *not* open pdb (and ignores
  PYTHONBREAKPOINT). `sys.breakpointhook = sys.__breakpointhook__` restores Python's hook;
  `import pdb; pdb.set_trace()` and `pdb.runcall(f, ...)` work as they are.
- pdb in the kernel is IPython's (prompt `ipdb> `, same commands); a `breakpoint()` at the
  top level of a cell steps out into IPython on `n`: stop inside a function instead.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING

from debuglab.core.kit import Kit
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import kernel
from debuglab.notebooks.devstack import DevstackSite
from debuglab.notebooks.errors import (
    CellFailed,
    CellTimedOut,
    LabRunError,
    ScriptExhausted,
    ScriptLeftOver,
)

if TYPE_CHECKING:  # nbformat is imported where used: it costs ~1 s on every CLI start
    from nbformat import NotebookNode

DEFAULT_TIMEOUT = 120.0  # seconds per cell
EOF = "\x04"  # ipykernel turns this input_reply into EOFError in the kernel
GRACE = 15.0  # seconds a cell gets to end after its script ran out
OUTPUT_TAIL = 3000  # characters of a cell's output kept in an error message
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --------------------------------------------------------------------------- cells


def stdin_script(cell: NotebookNode) -> list[str]:
    """The lines a cell's prompts are answered with (metadata debuglab.stdin)."""
    script = cell.get("metadata", {}).get("debuglab", {}).get("stdin", [])
    if isinstance(script, str) or not all(isinstance(line, str) for line in script):
        raise LabRunError(f"cell {cell.get('id')}: metadata debuglab.stdin must be a list of strings, "
                          f"one per prompt", cell_id=cell.get("id", ""))
    return list(script)


def set_stdin(cell: NotebookNode, lines: list[str]) -> NotebookNode:
    cell.setdefault("metadata", {}).setdefault("debuglab", {})["stdin"] = list(lines)
    return cell


def output(cell: NotebookNode) -> str:
    """Everything a code cell showed, as text: streams, results, and an error's name and value."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
        else:
            parts.append(out.get("data", {}).get("text/plain", "") + "\n")
    return ANSI.sub("", "".join(parts)).replace("\r", "")


def cell(nb: NotebookNode, id_or_tag: str) -> NotebookNode:
    """The cell with this id, or the only cell with this tag."""
    by_id = [c for c in nb.cells if c.get("id") == id_or_tag]
    if by_id:
        return by_id[0]
    tagged = [c for c in nb.cells if id_or_tag in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise LabRunError(f"no single cell with id or tag {id_or_tag!r} ({len(tagged)} tagged)")
    return tagged[0]


# --------------------------------------------------------------------------- the client


def _client_class():
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    class ScriptedClient(NotebookClient):
        """nbclient with the stdin channel on, each input_request answered from the cell's script."""

        def __init__(self, nb, *, kernel_dir: Path, kernel: str, label: str, **kw):
            super().__init__(nb, **kw)
            self._kernel_dir = kernel_dir
            self._kernel = kernel
            self._label = label

        def create_kernel_manager(self):
            specs = KernelSpecManager(kernel_dirs=[str(self._kernel_dir)])
            self.kernel_name = self._kernel
            self.km = AsyncKernelManager(kernel_name=self.kernel_name, kernel_spec_manager=specs)
            return self.km

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.allow_stdin = True  # nbclient turns it off: we answer the prompts
            return kc

        def _fail(self, kind, cell, message: str):
            shown = output(cell)
            return kind(f"{self._label}, cell {cell.get('id')}: {message}\n--- the cell's output (end) ---\n"
                        f"{shown[-OUTPUT_TAIL:]}", cell_id=cell.get("id", ""), output=shown)

        async def _feed(self, cell, script: list[str], state: dict) -> None:
            """Answer every input_request while the cell runs; EOF once the script is spent."""
            while True:
                try:
                    msg = await self.kc.stdin_channel.get_msg(timeout=0.2)
                except Empty:
                    continue
                if msg["header"]["msg_type"] != "input_request":
                    continue
                prompt = msg["content"].get("prompt", "")
                # let output the kernel flushed before its prompt reach the cell first
                for _ in range(50):
                    if not await self.kc.iopub_channel.msg_ready():
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.02)
                if state["used"] < len(script):
                    line = script[state["used"]]
                    state["used"] += 1
                    cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=f"{prompt}{line}\n"))
                    self.kc.input(line)
                else:
                    state["unanswered"].append(prompt)
                    if len(state["unanswered"]) == 1:
                        cell.outputs.append(nbformat.v4.new_output(
                            "stream", name="stdout", text=f"{prompt}<end of the cell's stdin script: EOF>\n"))
                    self.kc.input(EOF)

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if cell.cell_type != "code" or not cell.source.strip():
                return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            script = stdin_script(cell)
            state = {"used": 0, "unanswered": []}
            feeder = asyncio.ensure_future(self._feed(cell, script, state))
            run = asyncio.ensure_future(super().async_execute_cell(cell, cell_index, execution_count, store_history))
            try:
                while not run.done():
                    await asyncio.wait({run}, timeout=0.2)
                    if state["unanswered"] and not run.done():
                        # the script ran out: EOF was sent; give the cell a moment to end, then stop
                        done, _ = await asyncio.wait({run}, timeout=GRACE)
                        if not done:  # it swallows EOF and asks again: interrupt it (Ctrl-C)
                            await self.km.interrupt_kernel()
                            done, _ = await asyncio.wait({run}, timeout=GRACE)
                        if not done:
                            run.cancel()
                            await ensure_cancelled(run)
                        break
                error = run.exception() if run.done() and not run.cancelled() else None
            finally:
                feeder.cancel()
                await ensure_cancelled(feeder)
            if state["unanswered"]:
                raise self._fail(ScriptExhausted, cell,
                                 f"asked for input at prompt {state['unanswered'][0]!r} after {len(script)} "
                                 f"line(s) of its stdin script (metadata debuglab.stdin) were used up: "
                                 f"add the next command to the script") from error
            if isinstance(error, CellTimeoutError):
                raise self._fail(CellTimedOut, cell, f"did not finish in {self._get_timeout(cell)} s "
                                 f"(metadata debuglab.timeout sets a cell's own)") from None
            if isinstance(error, CellExecutionError):
                raise self._fail(CellFailed, cell, f"raised {error.ename}: {error.evalue}\n"
                                 f"{ANSI.sub('', error.traceback)}") from None
            if isinstance(error, DeadKernelError):
                raise self._fail(CellFailed, cell, "the kernel died while it ran (see its error above)") from error
            if error is not None:
                raise error
            if state["used"] < len(script):
                raise self._fail(ScriptLeftOver, cell,
                                 f"ended after {state['used']} of the {len(script)} line(s) of its stdin script; "
                                 f"unused: {script[state['used']:]} (did the debugger not stop where the notebook "
                                 f"says it does?)")
            return run.result()

    return ScriptedClient


async def ensure_cancelled(task: asyncio.Future) -> None:
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


def _timeout_for(default: float):
    def timeout(cell: NotebookNode) -> int:
        value = cell.get("metadata", {}).get("debuglab", {}).get("timeout", default)
        return int(value)

    return timeout


def run(ws: Workspace | DevstackSite, notebook: Path | NotebookNode, *, cwd: Path | None = None,
        timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None, name: str | None = None) -> NotebookNode:
    """Execute every cell of `notebook` (a path or a notebook, which is executed in place)
    on the lab's kernel and return the executed notebook; raises a LabRunError naming the
    cell that did not run as written."""
    import nbformat

    if isinstance(notebook, (str, os.PathLike)):
        path = Path(notebook)
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as exc:
            raise LabRunError(f"{path}: cannot read the notebook: {exc}") from exc
        label, folder = str(path), path.parent
    else:
        nb, label, folder = notebook, name or "notebook", Path.cwd()
    for c in nb.cells:
        if c.cell_type == "code":
            stdin_script(c)  # malformed scripts fail before the kernel starts
    kernel.register_kernel(ws)
    client = _client_class()(
        nb, kernel_dir=kernel.jupyter_dir(ws) / "kernels", kernel=kernel.kernel_name(ws), label=label,
        timeout_func=_timeout_for(timeout), shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd or folder)}},
    )
    try:
        client.execute(env={**os.environ, **(env or {})})
    except RuntimeError as exc:  # nbclient's "Kernel died before replying to kernel_info"
        if "kernel" not in str(exc).lower():
            raise
        raise LabRunError(f"{label}: the lab's kernel ({ws.python}) did not start: {exc}; its error is "
                          f"above. Rebuild the lab's venv with `debuglab lab create --force`") from exc
    finally:
        atexit.unregister(client._cleanup_kernel)  # nbclient's, left behind when a start fails
    return nb


# --------------------------------------------------------------------------- checking every lab before class


@dataclass(frozen=True)
class LabCheck:
    path: Path
    seconds: float
    cells: int  # code cells that ran
    error: LabRunError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def technique_labs(kit: Kit | None = None, folder: Path | None = None) -> list[Path]:
    """The kit's technique labs, labs/NN-name.ipynb (or those of `folder`, such as
    labs/devstack), in order (not the bug notebooks: their check cell would reveal a hint)."""
    folder = folder or (kit or Kit.default()).root / "labs"
    return sorted(folder.glob("[0-9][0-9]-*.ipynb"))


def check(ws: Workspace | DevstackSite, paths: list[Path], *, timeout: float = DEFAULT_TIMEOUT,
          on_step=lambda text: None) -> list[LabCheck]:
    """Run each notebook on this lab's kernel, as CI does; one LabCheck per notebook."""
    import nbformat

    results = []
    for path in paths:
        on_step(f"running {path.name}")
        start = time.monotonic()
        try:
            nb = nbformat.read(path, as_version=4)
        except (OSError, ValueError) as exc:
            results.append(LabCheck(path, 0.0, 0, LabRunError(f"{path}: cannot read the notebook: {exc}")))
            continue
        try:
            run(ws, nb, cwd=path.parent, timeout=timeout, name=str(path))
            error = None
        except LabRunError as exc:
            error = exc
        ran = sum(1 for c in nb.cells if c.cell_type == "code" and c.get("execution_count"))
        results.append(LabCheck(path, time.monotonic() - start, ran, error))
    return results
