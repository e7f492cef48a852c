"""`debuglab inject` and `debuglab test`: parsing and printing only (the work is in
debuglab.lab.inject and debuglab.lab.testing)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from debuglab.catalog.model import Catalog
from debuglab.core.console import console, err
from debuglab.core.kit import Kit
from debuglab.core.options import LAB_DIR
from debuglab.lab import inject, testing, workspace
from debuglab.lab.upstream import checkout_version
from debuglab.lab.workspace import Workspace


@click.command("inject")
@click.argument("bug_ids", nargs=-1)
@click.option("--checkout", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="The nova or python-novaclient checkout to plant the bugs in.")
@click.option("--force", is_flag=True, help="Save uncommitted work as a patch, set it aside, then inject.")
def inject_cmd(bug_ids: tuple[str, ...], checkout: Path, force: bool) -> None:
    """Plant bugs in a checkout (all of its project's bugs by default): all or none."""
    catalog = Catalog.load(Kit.default().bugs_dir, bug_ids)
    found = checkout_version(checkout)
    project = found[0] if found else None
    chosen = catalog.select(list(bug_ids)) if bug_ids else [b for b in catalog.bugs.values() if b.project == project]
    ws = Workspace.containing(checkout)
    if ws is not None and project is not None and ws.checkout(project).resolve() == checkout.resolve():
        result = workspace.inject_bugs(ws, project, chosen, force=force)
    else:
        result = inject.inject(checkout, chosen, force=force)
    if result.saved_work:
        console.print(f"[yellow]your uncommitted work was saved to[/] {result.saved_work}")
    if result.applied:
        console.print(f"planted {len(result.applied)} bug(s): {', '.join(result.applied)}")
    if result.already:
        console.print(f"already present, unchanged: {', '.join(result.already)}")
    if not result.applied:
        console.print("nothing to do: the checkout already holds every bug asked for")


@click.command("test")
@click.argument("targets", nargs=-1)
@LAB_DIR
@click.option("--list", "list_only", is_flag=True, help="Only list the test ids the targets select.")
@click.option("--pdb", "use_pdb", is_flag=True, help="Then stop pdb in the first failure (post-mortem).")
def test_cmd(targets: tuple[str, ...], root: Path, list_only: bool, use_pdb: bool) -> None:
    """nova's visible tests of your checkout, as `tox -e py3 -- TARGET` would run them: a module,
    a package, a class, a test id, or a path such as nova/scheduler (default: every unit test)."""
    ws = Workspace.open(root)
    with err.status("finding the tests"):
        listing = testing.list_ids(ws, list(targets))
    if list_only:
        for test_id in listing.ids:
            console.print(test_id, highlight=False, markup=False)
        console.print(f"{len(listing.ids)} test(s)")
        return
    start = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(f"{listing.project} tests", total=len(listing.ids))
        run = testing.run(ws, listing, on_progress=lambda done, total: progress.update(task, completed=done))
    outcomes = list(run.outcomes.values())
    failed = [o for o in outcomes if o.status not in ("success", "skip", "xfail")]
    if failed:
        table = Table(title=f"{len(failed)} failure(s)", show_lines=True)
        table.add_column("test", overflow="fold")
        table.add_column("status")
        table.add_column("traceback (end)", overflow="fold")
        for o in failed:
            table.add_row(o.id, o.status, "\n".join(o.details.strip().splitlines()[-12:]) or "-")
        console.print(table)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("success", "skip")}
    console.print(f"{counts['success']} passed, {len(failed)} failed, {counts['skip']} skipped "
                  f"in {time.monotonic() - start:.1f} s")
    if failed and use_pdb:
        console.print(f"post-mortem of {failed[0].id}:")
        testing.post_mortem(ws, listing.project, failed[0].id)
    if failed:
        sys.exit(1)


COMMANDS = (inject_cmd, test_cmd)
