"""The `debuglab` command: parsing and printing only. Each command group lives with the
package that does its work (`debuglab.<package>.commands`); this module joins them and
holds the commands that span packages (`up`, `lab create`)."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from shlex import quote

import click
from rich.table import Table

from debuglab.catalog.model import load_set, parse_bug_set
from debuglab.cloud import supervisor as cloud_supervisor
from debuglab.cloud.commands import attach, cloud, print_cloud
from debuglab.core.console import console, err, steps
from debuglab.core.errors import (
    DebuglabError,
    Terminated,
    explain_os_error,
    terminate_like_interrupt,
)
from debuglab.core.kit import Kit
from debuglab.core.options import LAB_DIR, PORT
from debuglab.grade.commands import check, grade
from debuglab.lab import commands as lab_commands
from debuglab.lab import gitrepo, rebuild, workspace
from debuglab.notebooks import jupyterlab, kernel
from debuglab.notebooks.commands import notebook, print_jupyterlab
from debuglab.provision import commands as provision_commands
from debuglab.verify import commands as verify_commands

BUGS = click.option("--bugs", "bug_set", metavar="IDS",
                    help="Comma-separated bug ids, 'all' (default) or 'none' (a lab without bugs).")


class _Group(click.Group):
    """Turns the kit's typed errors into one clear message and their exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DebuglabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a path the user gave, or the machine: never a traceback
            code, text = explain_os_error(exc)
            err.print(f"[bold red]error:[/] {text}", highlight=False, markup=True)
            sys.exit(code)
        except KeyboardInterrupt as exc:
            err.print("[yellow]interrupted: nothing was left half-built[/]")
            sys.exit(143 if isinstance(exc, Terminated) else 130)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log every command the kit runs.")
def main(verbose: bool) -> None:
    """debuglab: learn to debug OpenStack nova with pdb, remote-pdb and your IDE."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s")
    terminate_like_interrupt()
    if not verbose:  # paramiko logs a traceback for a host that never speaks SSH; the kit says it in one line
        logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)




@main.command()
@LAB_DIR
@BUGS
@click.option("--set", "set_name", metavar="NAME", help="Plant a session's set of bugs (instructor/sets/NAME.toml).")
@click.option("--notebook-port", type=PORT, default=None,
              help="JupyterLab's port on 127.0.0.1 (default: the last start's, else 8888).")
def up(root: Path, bug_set: str | None, set_name: str | None, notebook_port: int | None) -> None:
    """Set up the lab (creating it if needed), start its mini-cloud and JupyterLab, say where
    everything is. Run it again at any time: what runs is left running."""
    if not (root / workspace.LAB_TOML).is_file():
        ids = chosen_bugs(bug_set, set_name)
        with steps("building the lab") as on_step:
            workspace.create(root, ids, on_step=on_step)
    ws = workspace.Workspace.open(root)
    kernel.register_kernel(ws)
    _print_lab(ws)
    state = cloud_supervisor.read_state(ws)
    if state is None:
        with steps("starting the mini-cloud") as on_step:
            state = cloud_supervisor.start(ws, on_step=on_step)
    print_cloud(ws, state)
    lab_server = jupyterlab.read_state(ws)
    if lab_server is None:
        with steps("starting JupyterLab") as on_step:
            lab_server = jupyterlab.start(ws, port=notebook_port, on_step=on_step)
    print_jupyterlab(ws, lab_server)  # ends with the URL to open


@main.group()
def lab() -> None:
    """The lab workspace."""


def chosen_bugs(bug_set: str | None, set_name: str | None) -> list[str] | None:
    """--bugs a,b|all|none or --set NAME (instructor/sets/NAME.toml) into bug ids; [] means
    all, None none (a pristine lab)."""
    if bug_set and set_name:
        raise click.UsageError("give --bugs or --set, not both")
    if set_name:
        return load_set(Kit.default().bugs_dir, set_name).bug_ids
    return parse_bug_set(bug_set)


SET = click.option("--set", "set_name", metavar="NAME",
                   help="Plant a session's set of bugs: instructor/sets/NAME.toml (`debuglab bugs sets`).")


@lab.command("create")
@LAB_DIR
@BUGS
@SET
@click.option("--force", is_flag=True, help="Rebuild an existing lab (your changes are saved as patches first).")
def lab_create(root: Path, bug_set: str | None, set_name: str | None, force: bool) -> None:
    """Build a lab: nova and python-novaclient checkouts with the bugs planted, and a venv."""
    start = time.monotonic()
    ids = chosen_bugs(bug_set, set_name)
    with steps("building the lab") as on_step:
        if force and (root / workspace.LAB_TOML).is_file():
            ws = rebuild.rebuild(root, ids, services=(cloud_supervisor.CARRIED, jupyterlab.CARRIED),
                                     on_step=on_step)
        else:
            ws = workspace.create(root, ids, force=force, on_step=on_step)
    kernel.register_kernel(ws)
    kernel.student_copy(ws)  # the lab's own notebooks, made now (refreshed at each JupyterLab start)
    console.print(f"lab ready in {time.monotonic() - start:.1f} s")
    _print_lab(ws)
    lab_server = jupyterlab.read_state(ws)
    if lab_server is not None:  # started again by the rebuild: its address, as `up` ends
        print_jupyterlab(ws, lab_server)


@main.command()
@LAB_DIR
def status(root: Path) -> None:
    """The whole lab at a glance: its bugs, the cloud's services, JupyterLab, the debugger and
    your change. Exit 1 when something is down."""
    ws = workspace.Workspace.open(root)
    table = Table(title=f"lab at {ws.root}: {len(ws.bugs())} bug(s) planted")
    for column in ("part", "state", "where"):
        table.add_column(column)
    down = 0
    for s in cloud_supervisor.status(ws):
        up = s.running and s.listening is not False
        down += not up
        table.add_row(f"cloud: {s.name}", "[green]up[/]" if up else "[red]down[/]", f"127.0.0.1:{s.port}" if s.port else "-")
    notebook_server = jupyterlab.status(ws)
    down += not notebook_server.running
    table.add_row("JupyterLab", "[green]up[/]" if notebook_server.running else "[red]down[/]",
                  f"127.0.0.1:{notebook_server.port}")
    state = cloud_supervisor.read_state(ws)
    settings = state.settings if state else cloud_supervisor.last_settings(ws)
    table.add_row("debugger", settings.debug or "remote-pdb at breakpoint()",
                  f"127.0.0.1:{settings.debug_port or settings.pdb_port}")
    for project, entry in ws.info["projects"].items():
        table.add_row(f"your change: {project}", gitrepo.change_summary(ws.checkout(project), entry["baseline_commit"]),
                      f"git -C {quote(str(ws.checkout(project)))} diff")
    console.print(table)
    if down:
        err.print(f"[yellow]{down} part(s) down:[/] `debuglab up --dir {quote(str(ws.root))}` starts them")
        sys.exit(1)


def _print_lab(ws: workspace.Workspace) -> None:
    info = ws.info
    table = Table(title=f"lab at {ws.root}")
    for column in ("checkout", "upstream", "baseline commit", "bugs"):
        table.add_column(column)
    for name, entry in info["projects"].items():
        table.add_row(entry["path"], f"{name} {entry['version']}", entry["baseline_commit"][:12], str(len(entry["bugs"])))
    console.print(table)
    console.print(f"venv: {ws.venv}   (source {quote(str(ws.venv / 'bin' / 'activate'))})")
    console.print(f"your change at any time: git -C {quote(str(ws.checkout('nova')))} diff")
    if ws.saved_work.is_dir() and any(ws.saved_work.iterdir()):
        console.print(f"[yellow]saved earlier work:[/] {ws.saved_work}")


for _command in (verify_commands.bugs, verify_commands.reproduce_cmd, *lab_commands.COMMANDS,
                 cloud, attach, check, grade, notebook, *provision_commands.COMMANDS,
                 provision_commands.class_group):
    main.add_command(_command)
