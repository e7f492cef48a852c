"""`debuglab cloud start|stop|restart|status|logs|reset` and `debuglab attach`: parsing
and printing only (the work is in debuglab.cloud.supervisor)."""

from __future__ import annotations

import sys
from pathlib import Path
from shlex import quote

import click
from rich.table import Table

from debuglab.cloud import attach as attach_mod
from debuglab.cloud import config, hooks, localconf, supervisor
from debuglab.cloud.config import CloudPaths
from debuglab.core.console import console, err, steps
from debuglab.core.options import LAB_DIR, PORT, SECONDS, WAIT, WORKERS
from debuglab.lab.workspace import Workspace


def _port_options(fn):
    for name in reversed(list(config.DEFAULT_PORTS)):
        flag = supervisor.port_flag(name)
        fn = click.option(flag, f"{name}_port", type=PORT, default=None,
                          help=f"Port of {supervisor.PORT_NAMES[name]} (default: the last start's, else the lab's "
                               "own ports, see `cloud status`).")(fn)
    return fn


def _debug_options(fn):
    fn = click.option("--debug-port", type=PORT, default=None,
                      help="Port of the debugger (default: the lab's own, which `cloud start` prints).")(fn)
    fn = click.option("--debug", type=click.Choice(config.DEBUG_KINDS), default=None,
                      help="Debugger hook: remote-pdb (breakpoint()), pycharm (settrace), debugpy (VS Code).")(fn)
    return fn


def _log_level_option(fn):
    return click.option("--log-level", type=click.Choice(("debug", "info")), default=None,
                        help="nova's log level from now on: debug writes nova's DEBUG lines (the same as "
                             "`cloud config set DEFAULT debug True`, kept in local.conf); info turns them off.")(fn)


def _set_log_level(ws: Workspace, level: str | None) -> None:
    if level is not None:
        localconf.set_option(CloudPaths(ws).local_conf, "nova", "DEFAULT", "debug",
                             "True" if level == "debug" else None)


def _ports(kw: dict) -> dict[str, int]:
    return {name: kw[f"{name}_port"] for name in config.DEFAULT_PORTS if kw.get(f"{name}_port")}


def print_cloud(ws: Workspace, state: supervisor.CloudState) -> None:
    """Where everything is: endpoints, credentials, logs, the debugger."""
    settings = state.settings
    table = Table(title="mini-cloud on 127.0.0.1", title_justify="left")
    for column in ("service", "endpoint", "log"):
        table.add_column(column, no_wrap=column == "endpoint")
    paths = CloudPaths(ws)
    console.print(f"logs in {paths.logs}/ (nova.log: the whole nova process)", highlight=False)
    table.add_row("identity (Keystone)", settings.endpoint("keystone"), "keystone.log")
    table.add_row("compute (nova API)", settings.endpoint("nova"), "n-api.log")
    table.add_row("placement", settings.endpoint("placement"), "placement.log")
    table.add_row("image (glance)", settings.endpoint("image"), "g-api.log")
    table.add_row("network (neutron, ML2 flat/local)", settings.endpoint("network"), "q-svc.log")
    table.add_row("conductor, scheduler, compute", "(fake:/ message bus)",
                  "n-cond.log, n-sch.log, n-cpu.log")
    console.print(table)
    openrc = quote(str(paths.openrc))
    console.print(f"credentials: [bold]source {openrc}[/] (demo) or [bold]source {openrc} admin admin[/] "
                  f"(either puts the clients of {ws.venv}/bin on PATH, as DevStack's shell has them); "
                  f"clouds.yaml: {paths.clouds_yaml} (clouds devstack, devstack-admin)")
    console.print(f"try: openstack server create --image cirros-0.6.3-x86_64-disk --flavor m1.tiny --network private --wait vm1")
    console.print(f"debugger: {hooks.instructions(ws, settings)}", highlight=False)
    overrides = localconf.read(paths.local_conf)
    if overrides:
        shown = ", ".join(f"[{o.section}] {o.option}" for o in overrides[:4]) + (", ..." if len(overrides) > 4 else "")
        console.print(f"{paths.local_conf} sets {len(overrides)} option(s): {shown} (`debuglab cloud config show`)",
                      highlight=False)


cloud = click.Group("cloud", help="The mini-cloud: Keystone, nova, glance and neutron, on 127.0.0.1.")


@cloud.command()
@LAB_DIR
@_port_options
@_debug_options
@_log_level_option
@click.option("--timeout", type=SECONDS, default=180, show_default=True, help="Seconds to wait for the services.")
def start(root: Path, debug: str | None, debug_port: int | None, log_level: str | None, timeout: float, **kw) -> None:
    """Start Keystone, nova (API, conductor, scheduler, compute) and placement."""
    ws = Workspace.open(root)
    _set_log_level(ws, log_level)
    with steps("starting the mini-cloud") as on_step:
        state = supervisor.start(ws, ports=_ports(kw), debug=debug, debug_port=debug_port, timeout=timeout,
                                 on_step=on_step)
    print_cloud(ws, state)


@cloud.command()
@LAB_DIR
def stop(root: Path) -> None:
    """Stop every process of the mini-cloud."""
    ws = Workspace.open(root)
    state = supervisor.stop(ws)
    if state is None:
        console.print("the cloud was not running")
    else:
        console.print(f"stopped ({supervisor._pids_text(state)})")


@cloud.command()
@LAB_DIR
@_port_options
@_debug_options
@click.option("--no-debug", is_flag=True, help="Restart without the debugger hook of the last start.")
@_log_level_option
@click.option("--timeout", type=SECONDS, default=180, show_default=True, help="Seconds to wait for the services.")
def restart(root: Path, debug: str | None, debug_port: int | None, no_debug: bool, log_level: str | None,
            timeout: float, **kw) -> None:
    """Stop and start again, loading your edited code (like systemctl restart devstack@n-api)."""
    ws = Workspace.open(root)
    _set_log_level(ws, log_level)
    with steps("restarting the mini-cloud") as on_step:
        state = supervisor.restart(ws, ports=_ports(kw), debug=None if no_debug else (debug or False),
                                   debug_port=debug_port, timeout=timeout, on_step=on_step)
    print_cloud(ws, state)


@cloud.command()
@LAB_DIR
@click.option("--file", "file", help="Say which service runs this file, e.g. nova/scheduler/manager.py.")
def status(root: Path, file: str | None) -> None:
    """Each service: process, pid, port, running, listening."""
    ws = Workspace.open(root)
    rows = supervisor.status(ws)
    table = Table()
    for column in ("service", "process", "pid", "port", "state"):
        table.add_column(column)
    for row in rows:
        if row.running:
            state = "[green]running[/]" if row.listening in (True, None) else "[yellow]not listening[/]"
        else:
            state = "[red]stopped[/]"
        table.add_row(row.name, row.process, str(row.pid or "-"), str(row.port or "-"), state)
    console.print(table)
    if file:
        rel, services = supervisor.services_running_file(ws, file)
        pids = {r.name: r.pid for r in rows}
        shown = ", ".join(f"{s} (pid {pids.get(s) or 'not running'})" for s in services)
        console.print(f"{rel} runs in: {shown}", highlight=False)
    state = supervisor.read_state(ws)
    if state is not None:
        pdb = state.settings.pdb_port
        console.print(f"breakpoint() opens remote-pdb on 127.0.0.1:{pdb} (the next ones up to {pdb + 9}): "
                      f"`debuglab attach --dir {quote(str(ws.root))}`", highlight=False)
    down = [r.name for r in rows if not r.running or r.listening is False]
    if down:  # scripts can trust the exit code: 0 only when every service runs and listens
        console.print(f"[red]not serving:[/] {', '.join(down)} (`debuglab cloud restart --dir {quote(str(ws.root))}`)")
        raise SystemExit(1)


@cloud.command()
@LAB_DIR
@click.argument("service", default="nova", type=click.Choice(supervisor.LOG_NAMES))
@click.option("-n", "--lines", type=WORKERS, default=50, show_default=True, help="How many lines.")
def logs(root: Path, service: str, lines: int) -> None:
    """The end of a service's log (nova: the whole nova process)."""
    ws = Workspace.open(root)
    console.print(supervisor.logs(ws, service, lines), markup=False, highlight=False)


@cloud.command()
@LAB_DIR
@click.option("--yes", is_flag=True, help="Do not ask.")
def reset(root: Path, yes: bool) -> None:
    """Stop the cloud and delete its state (servers, users, logs): a clean cloud next start."""
    ws = Workspace.open(root)
    if not yes:
        try:
            answer = click.confirm(f"delete every server, user, uploaded image and log of the cloud in {ws.root}?")
        except click.Abort:  # end of input: nothing was asked of anyone, nothing deleted
            answer = False
        if not answer:
            console.print("nothing was deleted (--yes skips this question)")
            raise SystemExit(1)
    supervisor.reset(ws)
    console.print("the cloud's state is gone; `debuglab cloud start` builds a clean one")


@click.command("attach")
@LAB_DIR
@click.option("--port", type=PORT, default=None,
              help="Attach to the session on this port (default: the oldest waiting one).")
@click.option("--list", "list_only", is_flag=True, help="List the breakpoint() sessions waiting for a debugger.")
@click.option("--wait", type=WAIT, default=0, help="Seconds to wait for a breakpoint() to open a session.")
@click.option("--again", is_flag=True, help="After a session ends, wait for the next breakpoint.")
@click.option("--command", "commands", multiple=True, metavar="LINE",
              help="Type this debugger command (repeatable, in order) and print its output, no terminal "
                   "needed: `--command 'p flavor.flavorid' --command c`. nova carries on after the last.")
def attach(root: Path, port: int | None, list_only: bool, wait: float, again: bool, commands: tuple[str, ...]) -> None:
    """Attach to a remote-pdb session of the cloud, with line editing and history."""
    registry, stack = None, root / "stack"
    if root.joinpath("lab.toml").is_file() or port is None:
        ws = Workspace.open(root)
        registry, stack = CloudPaths(ws).dir / "debug-sessions", ws.root / "stack"

    def _short(path: str) -> str:
        return attach_mod.short_path(path, stack)

    if list_only:
        found = attach_mod.sessions(registry) if registry else []
        if not found:
            console.print("no breakpoint() is waiting for a debugger")
            return
        table = Table(title="remote-pdb sessions (oldest first)", title_justify="left")
        for column in ("port", "state", "where", "thread", "request", "waiting"):
            table.add_column(column)
        import time

        for s in found:
            table.add_row(str(s.port), s.state, f"{_short(s.file)}:{s.line} in {s.function}", s.thread, s.request_id or "-",
                          f"{time.time() - s.since:.0f} s")
        console.print(table)
        waiting = [s for s in found if s.state == "waiting"]
        lines = {}
        for s in waiting:
            lines.setdefault(f"{_short(s.file)}:{s.line}", []).append(s)
        console.print(f"{len(waiting)} session(s) waiting: " + ", ".join(
            f"{len(group)} at {where}" for where, group in lines.items()) if waiting else "none waiting", highlight=False)
        for where, group in lines.items():
            if len(group) > 1:
                console.print(f"{len(group)} stops at the same line {where}: a breakpoint() in a loop or a list view "
                              "stops once per item. Make it conditional on the one you want, e.g. "
                              "`if flavor.flavorid == '2': breakpoint()`", highlight=False)
        return
    try:
        attach_mod.attach(port, registry=registry, wait=wait, again=again,
                          commands=list(commands) if commands else None)
    except KeyboardInterrupt:  # not lab create's "nothing was left half-built"
        err.print("[yellow]interrupted: detached from remote-pdb[/] (a request stopped there carries on once its "
                  "session ends; `debuglab attach --list` shows what still waits)")
        sys.exit(130)


config_group = click.Group("config", help="Overrides of nova.conf (placement.conf, keystone.conf) in the lab's "
                                          "local.conf, DevStack's [[post-config|$NOVA_CONF]] way; loaded at every "
                                          "start and restart.")
cloud.add_command(config_group)
SERVICE = click.option("--service", type=click.Choice(sorted(localconf.SERVICE_FILES)), default="nova",
                       show_default=True, help="Whose config file: nova.conf, placement.conf or keystone.conf.")


def _config_changed(ws: Workspace) -> None:
    where = CloudPaths(ws).local_conf
    if supervisor.read_state(ws) is not None:
        console.print(f"written to {where}; the running cloud loads it at `debuglab cloud restart`", highlight=False)
    else:
        console.print(f"written to {where}; loaded at the next `debuglab cloud start`", highlight=False)


@config_group.command("set")
@LAB_DIR
@SERVICE
@click.argument("section")
@click.argument("option")
@click.argument("value")
def config_set(root: Path, service: str, section: str, option: str, value: str) -> None:
    """Set OPTION in [SECTION], e.g. `filter_scheduler max_instances_per_host 2`."""
    ws = Workspace.open(root)
    localconf.set_option(CloudPaths(ws).local_conf, service, section, option, value)
    _config_changed(ws)


@config_group.command("unset")
@LAB_DIR
@SERVICE
@click.argument("section")
@click.argument("option")
def config_unset(root: Path, service: str, section: str, option: str) -> None:
    """Remove OPTION of [SECTION] from local.conf (the cloud's default comes back)."""
    ws = Workspace.open(root)
    localconf.set_option(CloudPaths(ws).local_conf, service, section, option, None)
    _config_changed(ws)


@config_group.command("show")
@LAB_DIR
def config_show(root: Path) -> None:
    """The options local.conf sets, file by file."""
    ws = Workspace.open(root)
    path = CloudPaths(ws).local_conf
    overrides = localconf.read(path)
    if not overrides:
        console.print(f"no overrides ({path} sets none)", highlight=False)
        return
    table = Table(title=str(path), title_justify="left")
    for column in ("file", "section", "option", "value", "line"):
        table.add_column(column)
    for o in overrides:
        table.add_row(o.file, o.section, o.option, o.value, o.where)
    console.print(table)
