"""The instructor's commands: provision, collect, reset, tunnel. Parsing and printing only."""

from __future__ import annotations

import os
import shlex
import sys
import threading
import time
from pathlib import Path

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from debuglab.catalog.model import Catalog, load_set, parse_bug_set
from debuglab.core.kit import Kit
from debuglab.core.options import SECONDS
from debuglab.provision import collect as collect_mod
from debuglab.provision import engine, inventory
from debuglab.provision import reset as reset_mod
from debuglab.provision import tunnel as tunnel_mod
from debuglab.provision.errors import ProvisionFailed

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

INVENTORY = click.argument("inventory_path", metavar="INVENTORY", type=click.Path(path_type=Path, dir_okay=False))
INVENTORY_OPT = click.option("-i", "--inventory", "inventory_path", type=click.Path(path_type=Path, dir_okay=False),
                             default=Path("class.toml"), show_default=True, help="The class inventory.")
ACCEPT = click.option("--accept-new-host-keys", is_flag=True,
                      help="Trust hosts whose keys known_hosts lacks, and add them (check fingerprints first).")
PARALLEL = click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True,
                        help="Hosts worked on at once.")


def _load(path: Path, bug_set: str | None = None, set_name: str | None = None) -> inventory.Inventory:
    kit = Kit.default()
    inv = inventory.load(path, catalog=Catalog.load(kit.bugs_dir))
    if bug_set is not None and set_name is not None:
        raise click.UsageError("give --bugs or --set, not both")
    if set_name is not None:
        inv = inv.with_bugs(load_set(kit.bugs_dir, set_name).bug_ids)
    elif bug_set is not None:
        ids = parse_bug_set(bug_set)
        if ids is None:
            raise click.UsageError("--bugs none: a class host gets bug ids or 'all'; a lab without bugs is "
                                   "`debuglab lab create --bugs none`")
        Catalog.load(kit.bugs_dir).select(ids)  # unknown ids: a clear error now
        inv = inv.with_bugs(ids)
    return inv


class _Board:
    """A live table: one row per host with its current step and time."""

    def __init__(self, inv: inventory.Inventory):
        self.rows = {h: ("waiting", time.monotonic()) for h in inv.hosts}
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def update(self, host, text: str) -> None:
        with self.lock:
            self.rows[host] = (text, time.monotonic())

    def __rich__(self) -> Table:
        table = Table(title=f"provisioning {len(self.rows)} host(s) · {time.monotonic() - self.start:.0f} s")
        for column in ("student", "host", "profile", "step"):
            table.add_column(column)
        with self.lock:
            for host, (text, _) in self.rows.items():
                style = "green" if text == "done" else "red" if text == "failed" else ""
                table.add_row(host.student, f"{host.hostname}:{host.port}", host.profile,
                              f"[{style}]{text}[/]" if style else text)
        return table


@click.command("provision")
@INVENTORY
@click.option("--bugs", "bug_set", help="Comma-separated bug ids, or 'all': overrides the inventory.")
@click.option("--set", "set_name", metavar="NAME", help="A session's set (instructor/sets/NAME.toml): overrides the inventory.")
@PARALLEL
@click.option("--dry-run", is_flag=True, help="Connect and check every host; change nothing.")
@ACCEPT
def provision(inventory_path: Path, bug_set: str | None, set_name: str | None, parallel: int, dry_run: bool,
              accept_new_host_keys: bool) -> None:
    """Prepare every host of the class inventory over SSH (DevStack or lab hosts)."""
    inv = _load(inventory_path, bug_set, set_name)
    board = _Board(inv)
    start = time.monotonic()
    with Live(board, console=err, refresh_per_second=4, transient=True):
        results = engine.provision(inv, parallel=parallel, dry_run=dry_run,
                                   accept_new_host_keys=accept_new_host_keys, on_event=board.update)
    wall = time.monotonic() - start
    table = Table(title="provision" + (" (dry run)" if dry_run else ""))
    for column in ("student", "host", "profile", "result", "time", "why / plan / on the host"):
        table.add_column(column)
    for r in results:
        if not r.ok:
            result, why = "[red]failed[/]", _first_line(r.error)
        elif dry_run:
            result, why = "[green]ok[/]", r.details.get("plan", "")
        else:
            result, why = ("[green]ok[/]" if r.changed else "[green]ok[/] (unchanged)"), _on_host(r)
        table.add_row(r.host.student, f"{r.host.hostname}:{r.host.port}", r.host.profile, result,
                      f"{r.seconds:.1f} s", why)
    console.print(table)
    for r in results:
        if r.ok and not dry_run:
            did = ", ".join(r.details.get("done") or []) or ("changed" if r.changed else "nothing to do")
            console.print(f"[green]✓[/] {r.host.student} ({did}): {_access(r, inv)}", highlight=False)
            for note in r.details.get("left_out") or ():
                console.print(f"  [yellow]note:[/] {note}", highlight=False)
    for r in results:
        if not r.ok:
            console.print(f"[red]✗[/] {r.host.student} ({r.host.name}): {r.error}", highlight=False)
    failed = [r for r in results if not r.ok]
    console.print(f"{len(results) - len(failed)}/{len(results)} host(s) ready in {wall:.1f} s")
    if failed:
        raise ProvisionFailed(f"{len(failed)} host(s) failed: {', '.join(r.host.student for r in failed)}")


def _first_line(text: str | None, limit: int = 60) -> str:
    line = (text or "").splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _on_host(r: engine.HostResult) -> str:
    """The short form of what listens on the host's loopback."""
    parts = []
    if r.host.profile == "devstack":
        ports = sorted(r.details.get("ports", {}).values())
        parts = [f"remote-pdb {ports[0]}-{ports[-1]}"] if ports else []
    cloud = r.details.get("cloud") or {}
    if cloud.get("running"):
        parts.append(f"cloud: nova :{cloud['ports']['nova']}, keystone :{cloud['ports']['keystone']}")
    notebook = r.details.get("notebook") or {}
    if notebook.get("running"):
        parts.append(f"JupyterLab :{notebook['port']}")
    return " · ".join(parts)


def _access(r: engine.HostResult, inv: inventory.Inventory) -> str:
    h = r.host
    ssh = f"ssh -p {h.port} {h.user}@{h.hostname}"
    if h.profile == "devstack":
        ports = ", ".join(f"{u.split('@')[-1]}:{p}" for u, p in r.details.get("ports", {}).items())
        base = ", ".join(f"{p} {c[:12]}" for p, c in r.details.get("baseline", {}).items())
        text = f"{ssh} · baseline {base} · remote-pdb {ports}"
        if r.details.get("saved_work"):
            text += f" · earlier work saved: {', '.join(r.details['saved_work'])}"
    else:
        text = f"{ssh} · lab {r.details.get('lab')}"
    cloud = r.details.get("cloud") or {}
    if cloud.get("running"):  # a lab host's
        ep = cloud["endpoints"]
        text += (f" · mini-cloud on the host's loopback: nova {ep['nova']}, keystone {ep['keystone']}"
                 f" (source {shlex.quote(cloud['openrc'])})")
    notebook = r.details.get("notebook") or {}
    if notebook.get("running"):
        text += f" · JupyterLab {notebook['url']}"
    return text + f" · forwards: debuglab tunnel {shlex.quote(h.student)} -i {shlex.quote(str(inv.path))}"


@click.command("collect")
@INVENTORY
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False), default=Path("submissions"),
              show_default=True, help="Where each student's patches go.")
@PARALLEL
@ACCEPT
def collect(inventory_path: Path, dest: Path, parallel: int, accept_new_host_keys: bool) -> None:
    """Fetch every student's work (diff against their baseline) into a submissions folder."""
    inv = _load(inventory_path)
    with err.status(f"collecting from {len(inv.hosts)} host(s)"):
        results = collect_mod.collect(inv, dest, parallel=parallel, accept_new_host_keys=accept_new_host_keys)
    table = Table(title=f"submissions in {dest}")
    for column in ("student", "host", "result", "files changed", "time", "folder / why"):
        table.add_column(column)
    for r in results:
        table.add_row(r.host.student, r.host.name, "[green]ok[/]" if r.ok else "[red]failed[/]",
                      str(r.changed_files) if r.ok else "-", f"{r.seconds:.1f} s",
                      r.folder.name if r.ok else _first_line(r.error))
    console.print(table)
    for r in results:
        if not r.ok:
            console.print(f"[red]✗[/] {r.host.student} ({r.host.name}): {r.error}", highlight=False)
    failed = [r for r in results if not r.ok]
    if failed:
        raise ProvisionFailed(f"{len(failed)} host(s) not collected: {', '.join(r.host.student for r in failed)}")


@click.command("reset")
@click.argument("host")
@INVENTORY_OPT
@click.option("--bug", "bug_id", help="Reset only the files of this bug's scope.")
@click.option("--saved-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("saved-work"),
              show_default=True, help="Where a copy of the student's saved work goes.")
@ACCEPT
def reset(host: str, inventory_path: Path, bug_id: str | None, saved_dir: Path, accept_new_host_keys: bool) -> None:
    """Put a student's checkout back to the baseline, saving their work as a patch first."""
    inv = _load(inventory_path)
    r = reset_mod.reset(inv, host, bug_id=bug_id, saved_dir=saved_dir, accept_new_host_keys=accept_new_host_keys)
    if not r.changed:
        console.print(f"{r.host.student}: {r.project} already at its baseline; nothing to reset")
        return
    console.print(f"{r.host.student}: work saved on the host as {r.saved_remote}", highlight=False)
    console.print(f"  and here as {r.saved_local}", highlight=False)
    console.print(f"{r.project} is back at its baseline" + (f" (files of {bug_id})" if bug_id else ""))
    if r.restarted:
        console.print(f"restarted: {' '.join(r.restarted)}")


@click.command("tunnel")
@click.argument("host")
@INVENTORY_OPT
@click.option("--port-offset", type=click.IntRange(0, 65534), default=0, help="Add this to every local port (several tunnels at once).")
@click.option("--run", "run_it", is_flag=True, help="Run the ssh command instead of printing it.")
@ACCEPT
def tunnel(host: str, inventory_path: Path, port_offset: int, run_it: bool, accept_new_host_keys: bool) -> None:
    """The SSH forwards to a host: JupyterLab, remote-pdb, debugpy, PyCharm (reverse)."""
    inv = _load(inventory_path)
    t = tunnel_mod.tunnel(inv, host, offset=port_offset, accept_new_host_keys=accept_new_host_keys)
    if run_it:
        err.print(f"forwarding for {t.host.student} (Ctrl-C to stop)")
        sys.stdout.flush()
        os.execvp(t.argv[0], list(t.argv))
    table = Table(title=f"forwards for {t.host.student}")
    for column in ("here", "on the host", "what"):
        table.add_column(column)
    for f in t.forwards:
        here = f"127.0.0.1:{f.local}"
        there = f"127.0.0.1:{f.remote}"
        table.add_row(here if f.kind == "L" else f"{here} ←", there if f.kind == "L" else f"← {there}", f.what)
    console.print(table)
    console.print(shlex.join(t.argv), highlight=False)


COMMANDS = (provision, collect, reset, tunnel)


# ---- class up / down (python-novaclient) ------------------------------------------------

@click.group("class")
def class_group() -> None:
    """Boot and delete the class's VMs through python-novaclient (clouds.yaml / OS_*)."""


@class_group.command("up")
@click.option("--cloud", help="A cloud of clouds.yaml (default: the OS_* variables).")
@click.option("--image", required=True, help="Image name or id (a DevStack or lab image).")
@click.option("--flavor", required=True, help="Flavor name or id.")
@click.option("--count", type=click.IntRange(1, 1000), help="This many students, named student01…")
@click.option("--roster", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="One student name a line.")
@click.option("--key-name", help="A Nova keypair to put on the VMs.")
@click.option("--network", help="Network id, or 'none' (default: nova's auto allocation).")
@click.option("--user", default="stack", show_default=True, help="The SSH user on the image.")
@click.option("--profile", type=click.Choice(inventory.PROFILES), default="devstack", show_default=True)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("class.toml"), show_default=True,
              help="The inventory to write.")
@click.option("--timeout", type=SECONDS, default=900, show_default=True, help="Seconds to wait for ACTIVE.")
def class_up(cloud, image, flavor, count, roster, key_name, network, user, profile, out, timeout) -> None:
    """Boot one VM per student, wait for ACTIVE (an ERROR server is retried once), write the inventory."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from debuglab.provision import classroom

    if (count is None) == (roster is None):
        raise click.UsageError("give exactly one of --count N or --roster FILE")
    students = classroom.read_roster(roster) if roster else [f"student{i:02d}" for i in range(1, count + 1)]
    nova = classroom.nova_client(classroom.credentials(cloud))
    with Progress(TextColumn("booting"), BarColumn(), TextColumn("{task.completed}/{task.total} ACTIVE or failed"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("boot", total=len(students))
        class_id, booted = classroom.up(nova, image=image, flavor=flavor, students=students, key_name=key_name,
                                        network=network, timeout=timeout,
                                        on_progress=lambda done, total: progress.update(task, completed=done))
    classroom.write_inventory(out, class_id, cloud, booted, user=user, profile=profile)
    table = Table(title=f"class {class_id}")
    for column in ("student", "server", "address", "result"):
        table.add_column(column)
    for b in booted:
        if b.ok:
            result = "[green]ACTIVE[/]" + (f" (retried after ERROR: {b.first_error})" if b.retried else "")
        else:
            result = f"[red]failed[/] {b.error}" + (f" (first attempt: {b.first_error})" if b.first_error else "")
        table.add_row(b.student, b.server_id or "-", b.address or "-", result)
    console.print(table)
    console.print(f"inventory: {out}  (next: debuglab provision {out} --accept-new-host-keys after checking fingerprints)")
    console.print(classroom.summary(booted), highlight=False)
    failed = [b for b in booted if not b.ok]
    if failed:
        raise ProvisionFailed(f"{len(failed)} of {len(booted)} server(s) failed: "
                              f"{', '.join(b.student for b in failed)}")


@class_group.command("down")
@INVENTORY
def class_down(inventory_path: Path) -> None:
    """Delete exactly the servers `class up` created for this inventory (marked by metadata)."""
    from debuglab.provision import classroom

    class_id, cloud = classroom.class_id_of(inventory_path)
    deleted = classroom.down(classroom.nova_client(classroom.credentials(cloud)), class_id)
    console.print(f"deleted {len(deleted)} server(s) of class {class_id}: {', '.join(deleted) or 'none'}")
