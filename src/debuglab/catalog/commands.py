"""`debuglab bugs list|show|sets`: the catalog as a student may see it, parsing and
printing only (the work is in debuglab.catalog.model). `bugs verify` joins this group from
debuglab.verify.commands."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from debuglab.catalog.model import Catalog, load_set, sets_dir
from debuglab.core.console import console
from debuglab.core.errors import DebuglabError
from debuglab.core.kit import Kit
from debuglab.lab.workspace import Workspace


@click.group()
def bugs() -> None:
    """The bug catalog."""


LAB_BUGS = click.option("--dir", "root", type=click.Path(path_type=Path), default=None,
                        help="A lab: only the bugs planted in it (default: the whole catalog).")


def _planted(root: Path | None, bug_ids: list[str] | None = None) -> list[str] | None:
    """The bugs planted in the lab at `root` (None without --dir); an id not planted there is bad input."""
    if root is None:
        return None
    planted = Workspace.open(root).bugs()
    for bug_id in bug_ids or ():
        if bug_id not in planted:
            raise DebuglabError(f"bug '{bug_id}' is not planted in the lab {root} (it has: {', '.join(planted) or 'none'})")
    return planted


@bugs.command("list")
@LAB_BUGS
def bugs_list(root: Path | None) -> None:
    """The bugs in the catalog (what a student may see); with --dir, the lab's."""
    planted = _planted(root)
    catalog = Catalog.load(Kit.default().bugs_dir, planted)
    table = Table(title="debuglab bugs" + (f" planted in {root}" if root else ""))
    table.add_column("id", no_wrap=True, min_width=max((len(i) for i in catalog.bugs), default=2))
    for column in ("project", "layer", "difficulty", "title"):
        table.add_column(column)
    for bug in catalog.select(planted) if planted is not None else catalog.bugs.values():
        table.add_row(bug.id, bug.project, bug.layer, "★" * bug.difficulty, bug.title)
    console.print(table)


@bugs.command("sets")
def bugs_sets() -> None:
    """The instructor's sets of bugs for a session (`lab create --set NAME`, `provision --set NAME`)."""
    bugs_dir = Kit.default().bugs_dir
    table = Table(title=f"bug sets ({sets_dir(bugs_dir)})")
    for column in ("set", "title", "session", "bugs", "expected minutes per bug"):
        table.add_column(column)
    for path in sorted(sets_dir(bugs_dir).glob("*.toml")):
        bug_set = load_set(bugs_dir, path.stem)
        table.add_row(bug_set.name, bug_set.title, f"{bug_set.minutes} min", str(len(bug_set.items)),
                      ", ".join(f"{i.bug_id} {i.minutes}" for i in bug_set.items))
    console.print(table)


@bugs.command("show")
@click.argument("bug_id")
@LAB_BUGS
def bugs_show(bug_id: str, root: Path | None) -> None:
    """One bug's story: symptom, objectives, techniques (no hints, scope, tests or fix)."""
    _planted(root, [bug_id])
    bug = Catalog.load(Kit.default().bugs_dir, [bug_id]).select([bug_id])[0]
    info = bug.public()
    console.print(f"[bold]{escape(info['title'])}[/]  ({info['id']})", highlight=False)
    console.print(f"{info['project']} {info['upstream']} · layer {info['layer']} · difficulty {'★' * info['difficulty']}")
    console.print(f"\n[bold]Symptom[/]\n{escape(info['symptom'].strip())}", highlight=False)  # [sections] stay
    console.print("\n[bold]You will learn to[/]", highlight=False)
    for objective in info["objectives"]:
        console.print(f"  • {escape(objective)}", highlight=False)
    console.print(f"\n[bold]Techniques[/]: {', '.join(info['techniques'])}")
