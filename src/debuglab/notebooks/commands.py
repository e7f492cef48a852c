"""`debuglab notebook`: JupyterLab on 127.0.0.1, serving labs/ with the lab's kernel
`debuglab`, as a background service of the lab (like `debuglab cloud`). Parsing and
printing only (the work is in debuglab.notebooks.jupyterlab).

Usage (scripts: options after the subcommand; `url` prints the address alone):

    debuglab notebook start  [--dir LAB] [--port N] [--timeout S]  # in the background; prints the URL
    debuglab notebook stop   [--dir LAB]        # the server and its kernels: no process left
    debuglab notebook status [--dir LAB]        # pid, port, listening, log
    debuglab notebook url    [--dir LAB]        # http://127.0.0.1:N/lab/tree/01-welcome.ipynb?token=...
    debuglab notebook        [--dir LAB] [--port N]  # the same server in the foreground, until Ctrl-C
    debuglab notebook check  [--dir LAB] [PATH...]   # run the technique labs (or PATHs) as CI does

On a DevStack host that `debuglab provision` prepared, `--devstack STACK_DIR` replaces
--dir: labs/devstack/ with the kernel debuglab-devstack (DevStack's own python), the
token, pidfile and log in STACK_DIR/.debuglab/jupyter/.

--port defaults to the last start's port, else 8888 (the port `debuglab tunnel` forwards).
The token is made once and kept in LAB/jupyter/token (0600); the log is
LAB/jupyter/jupyterlab.log (0600); the pidfile LAB/jupyter/jupyterlab.json.

Exit codes:
    0  done: started (start), stopped or was not running (stop), running (status), URL printed (url)
    1  start: already running, nothing started (`url` prints its address);
       status, url: not running; check: a notebook did not run as written
    2  bad input: no lab at --dir, port in use (the message names the program holding it)
    3  JupyterLab exited or did not answer while starting (the message carries its log's end)
  130  interrupted
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from shlex import quote

import click
from rich.table import Table

from debuglab.core import options
from debuglab.core.console import console, err, steps
from debuglab.core.kit import Kit
from debuglab.core.options import LAB_DIR, SECONDS
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import content, headless, jupyterlab, kernel
from debuglab.notebooks.devstack import DevstackSite
from debuglab.notebooks.errors import JupyterLabNotRunning, JupyterLabStartFailed

DEVSTACK = click.option("--devstack", "stack_dir", type=click.Path(path_type=Path), default=None,
                        help="On a DevStack host: its stack folder (/opt/stack), provisioned by "
                             "`debuglab provision`; serves labs/devstack/ with DevStack's python. Replaces --dir.")
PORT = click.option("--port", type=options.PORT, default=None,
                    help=f"JupyterLab's port on 127.0.0.1 (default: the last start's, else {jupyterlab.DEFAULT_PORT}).")


def _target(root: Path, stack_dir: Path | None) -> jupyterlab.Target:
    """The lab at --dir, or the DevStack host at --devstack."""
    return DevstackSite.open(stack_dir) if stack_dir is not None else Workspace.open(root)


def print_jupyterlab(ws: jupyterlab.Target, state: jupyterlab.JupyterLabState) -> None:
    """Where JupyterLab is, how to reach it from a laptop; the URL comes last."""
    name = kernel.kernel_name(ws)
    console.print(f"JupyterLab (pid {state.pid}) serves {state.root_dir} with the kernel "
                  f"[bold]{name}[/] ({content.KERNEL_DISPLAYS[name]}); log: {jupyterlab.log_path(ws)}",
                  highlight=False)
    console.print(f"from a laptop: [bold]{jupyterlab.ssh_forward(state.port)}[/] "
                  "(or `debuglab tunnel STUDENT` for a class host), then open there:", highlight=False)
    console.print(f"open [bold]{jupyterlab.url(ws, state.port)}[/]", highlight=False)


@click.group("notebook", invoke_without_command=True)
@LAB_DIR
@DEVSTACK
@PORT
@click.pass_context
def notebook(ctx: click.Context, root: Path, stack_dir: Path | None, port: int | None) -> None:
    """JupyterLab on 127.0.0.1 with a token, on the lab's own notebooks (lab/notebooks), with the lab's kernel.

    Without a subcommand: serve it in the foreground until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        given = [p.opts[0] for p in ctx.command.params
                 if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"put {', '.join(given)} after the subcommand: "
                                   f"debuglab notebook {ctx.invoked_subcommand} {' '.join(given)} ...")
        return
    ws = _target(root, stack_dir)
    with steps("starting JupyterLab") as on_step:
        state = jupyterlab.start(ws, port=port, on_step=on_step)

    def _stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)  # a closed terminal stops it too
    print_jupyterlab(ws, state)
    console.print("Ctrl-C stops it (`debuglab notebook start` runs it in the background instead).")
    try:
        jupyterlab.wait(ws, state)
    except KeyboardInterrupt:
        jupyterlab.stop(ws)
        console.print("JupyterLab stopped")
        return
    jupyterlab.read_state(ws)  # drops the stale pidfile
    err.print(f"[red]JupyterLab exited by itself; the end of {jupyterlab.log_path(ws)}:[/]", highlight=False)
    err.print(jupyterlab.log_tail(ws), highlight=False, markup=False)
    sys.exit(JupyterLabStartFailed.exit_code)


@notebook.command()
@LAB_DIR
@DEVSTACK
@PORT
@click.option("--timeout", type=SECONDS, default=90, show_default=True, help="Seconds to wait for it to answer.")
def start(root: Path, stack_dir: Path | None, port: int | None, timeout: float) -> None:
    """Start JupyterLab in the background and print its URL."""
    ws = _target(root, stack_dir)
    with steps("starting JupyterLab") as on_step:
        state = jupyterlab.start(ws, port=port, timeout=timeout, on_step=on_step)
    print_jupyterlab(ws, state)


@notebook.command()
@LAB_DIR
@DEVSTACK
def stop(root: Path, stack_dir: Path | None) -> None:
    """Stop JupyterLab and its kernels."""
    ws = _target(root, stack_dir)
    state = jupyterlab.stop(ws)
    console.print("JupyterLab was not running" if state is None else f"JupyterLab stopped (pid {state.pid})")


@notebook.command()
@LAB_DIR
@DEVSTACK
def status(root: Path, stack_dir: Path | None) -> None:
    """Running or not: pid, port, listening, log (exit 1 when not running)."""
    ws = _target(root, stack_dir)
    st = jupyterlab.status(ws)
    table = Table(title=f"JupyterLab of {ws.root}", title_justify="left")
    for column in ("state", "pid", "port", "log"):
        table.add_column(column)
    if st.running:
        state = "[green]running[/]" if st.listening else "[yellow]not listening[/]"
    else:
        state = "[red]stopped[/]"
    table.add_row(state, str(st.pid or "-"), f"127.0.0.1:{st.port}", str(st.log))
    console.print(table)
    if st.running:
        console.print(f"address with the token: `debuglab notebook url --dir {quote(str(ws.root))}`", highlight=False)
    else:
        sys.exit(JupyterLabNotRunning.exit_code)


@notebook.command()
@LAB_DIR
@DEVSTACK
def url(root: Path, stack_dir: Path | None) -> None:
    """Print the URL to open (with the token), alone on its line."""
    click.echo(jupyterlab.running_url(_target(root, stack_dir)))


@notebook.command("check")
@LAB_DIR
@DEVSTACK
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--timeout", type=SECONDS, default=headless.DEFAULT_TIMEOUT, show_default=True,
              help="Seconds each cell may run.")
def check_labs(root: Path, stack_dir: Path | None, paths: tuple[Path, ...], timeout: float) -> None:
    """Run the technique labs (or PATHS) on this lab's kernel, typing each debugger cell's
    commands, as CI does: run it before class (exit 1 when one fails).

    Labs that use the cloud need it running (`debuglab cloud start`)."""
    ws = _target(root, stack_dir)
    chosen = list(paths) or headless.technique_labs(folder=kernel.labs_dir(ws, Kit.default()))
    with steps(f"running {len(chosen)} notebook(s) on the kernel of {ws.root}") as on_step:
        results = headless.check(ws, chosen, timeout=timeout, on_step=on_step)
    table = Table(title=f"notebooks run on {ws.root}", title_justify="left")
    for column in ("notebook", "result", "cells run", "time"):
        table.add_column(column)
    for r in results:
        table.add_row(r.path.name, "[green]ok[/]" if r.ok else f"[red]{type(r.error).__name__}[/]",
                      str(r.cells), f"{r.seconds:.1f} s")
    console.print(table)
    for r in results:
        if not r.ok:
            err.print(str(r.error), highlight=False, markup=False)
    if not all(r.ok for r in results):
        sys.exit(1)
