"""`debuglab bugs list|show|sets|verify [--live]` and `debuglab reproduce`: the catalog as a
student may see it, and the proof that each bug behaves as it says. Parsing and printing
only (the work is in debuglab.catalog.model and debuglab.verify.checks, .live and
.reproduce)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from debuglab.catalog.model import Catalog, load_set, sets_dir
from debuglab.core.console import console, err, steps
from debuglab.core.errors import DebuglabError
from debuglab.core.kit import Kit
from debuglab.core.options import LAB_DIR, WORKERS
from debuglab.lab.workspace import Workspace
from debuglab.verify import checks, records, reproduce


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
@click.option("--instructor", is_flag=True, help="Also each bug's layer: where its cause lives (never a student's).")
def bugs_list(root: Path | None, instructor: bool) -> None:
    """The bugs in the catalog (what a student may see); with --dir, the lab's."""
    planted = _planted(root)
    catalog = Catalog.load(Kit.default().bugs_dir, planted)
    table = Table(title="debuglab bugs" + (f" planted in {root}" if root else ""))
    table.add_column("id", no_wrap=True, min_width=max((len(i) for i in catalog.bugs), default=2))
    columns = ("project", "layer", "difficulty", "title") if instructor else ("project", "difficulty", "title")
    for column in columns:
        table.add_column(column)
    for bug in [catalog.bugs[i] for i in planted if i in catalog.bugs] if planted is not None else catalog.bugs.values():
        cells = {"project": bug.project, "layer": bug.layer, "difficulty": "★" * bug.difficulty, "title": bug.title}
        table.add_row(bug.id, *(cells[c] for c in columns))
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
    console.print(f"{info['project']} {info['upstream']} · difficulty {'★' * info['difficulty']}")
    console.print(f"\n[bold]Symptom[/]\n{escape(info['symptom'].strip())}", highlight=False)  # [sections] stay
    console.print("\n[bold]You will learn to[/]", highlight=False)
    for objective in info["objectives"]:
        console.print(f"  • {escape(objective)}", highlight=False)
    console.print(f"\n[bold]Techniques[/]: {', '.join(info['techniques'])}")


@bugs.command("verify")
@click.argument("bug_ids", nargs=-1)
@click.option("--lab", "root", type=click.Path(path_type=Path), default=Path("lab"), show_default=True,
              help="The lab whose venv runs the tests.")
@click.option("--jobs", type=WORKERS, default=None, help="Test workers at once (default: the number of cores).")
@click.option("--live", is_flag=True, help="Instead: prove every symptom on a scratch lab's running cloud "
                                          "(planted: the script shows the bug; with its fix: it does not).")
@click.option("--clouds", type=click.IntRange(1, 8), default=2, show_default=True,
              help="With --live: scratch clouds that share the bugs out.")
@click.option("--changed", is_flag=True, help="Only the bugs whose record (bugs/<id>/verified.toml) no longer "
                                             "matches what they depend on, and --sample others (as CI runs it).")
@click.option("--sample", type=click.IntRange(0, None), default=3, show_default=True,
              help="With --changed: how many bugs with a current record to verify again (a few each day).")
@click.option("--no-record", "no_record", is_flag=True,
              help="Leave the bugs' records as they are (the test suite's runs).")
def bugs_verify(bug_ids: tuple[str, ...], root: Path, jobs: int | None, live: bool, clouds: int,
                changed: bool, sample: int, no_record: bool) -> None:
    """Check every bug, Defects4J-style: pristine, injected, fixed, alternative, all together,
    and for tiers 2 and 3 nova's visible tests; with --live, every symptom on a running cloud.
    Each bug that verifies gets its record (bugs/<id>/verified.toml: commit it with the bug)."""
    if live:
        return _verify_live(list(bug_ids), clouds)
    if changed:
        if bug_ids:
            raise click.UsageError("give bug ids or --changed, not both")
        kit = Kit.default()
        selection = records.select(kit, list(Catalog.load(kit.bugs_dir).bugs.values()), sample=sample)
        console.print(f"records out of date: {', '.join(selection.changed) or 'none'}; "
                      f"verified again as a sample: {', '.join(selection.sample) or 'none'}", highlight=False)
        bug_ids = tuple(selection.bug_ids)
        if not bug_ids:
            console.print("nothing to verify")
            return
    ws = Workspace.open(root)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  TextColumn("{task.completed}/{task.total} runs"), console=err, transient=True) as progress:
        task = progress.add_task("verifying")

        def on_run(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label)

        report = checks.verify(ws, list(bug_ids), jobs=jobs, record=not no_record, on_run=on_run)
    table = Table(title="bug verification")
    for column in ("bug", *checks.CHECK_TITLES.values(), "verdict"):
        table.add_column(column)
    for bug_report in report.bugs:
        cells = [_cell(bug_report.checks.get(key)) for key in checks.CHECK_TITLES]
        table.add_row(bug_report.bug_id, *cells, "[green]ok[/]" if bug_report.ok else "[red]DEVIATES[/]")
    console.print(table)
    for bug_report in report.bugs:
        for problem in bug_report.problems:
            console.print(f"[red]✗[/] {bug_report.bug_id}: {problem}", highlight=False)
    if report.upstream_failures:
        shown = ", ".join(report.upstream_failures[:checks.SHOWN])
        more = len(report.upstream_failures) - checks.SHOWN
        console.print(f"[yellow]![/] {len(report.upstream_failures)} visible test(s) fail on pristine upstream too "
                      f"(charged to no bug: upstream's own, or a lab venv that does not suit nova; "
                      f"`debuglab lab create --force` rebuilds it from the lock): {shown}"
                      + (f" and {more} more" if more > 0 else ""), highlight=False)
    console.print(
        f"{report.tests_run} test results in {report.seconds:.1f} s "
        f"({report.tests_run / max(report.seconds, 1e-9):.1f} tests/s, {report.runs} worker runs)"
    )
    if not report.ok:
        sys.exit(1)


def _verify_live(bug_ids: list[str], clouds: int) -> None:
    from debuglab.verify import live

    with steps("proving every symptom on a running cloud") as on_step:
        report = live.verify_live(bug_ids, clouds=clouds, on_step=on_step)
    table = Table(title="symptoms on the live cloud")
    for column in ("bug", "all planted: bug shown", "its fix only: right", "verdict"):
        table.add_column(column)
    seen = {True: "[red]bug shown[/]", False: "[green]right[/]", None: "[yellow]no verdict[/]"}
    for r in report.results:
        fixed = seen[r.fixed.bug_seen] + f" {r.fixed.seconds:.0f} s" if r.fixed else "[red]not tried[/]"
        table.add_row(r.bug_id, seen[r.planted.bug_seen] + f" {r.planted.seconds:.0f} s", fixed,
                      "[green]ok[/]" if r.ok else "[red]DEVIATES[/]")
    console.print(table)
    for r in report.results:
        if r.ok:
            continue
        if r.problem:
            console.print(f"[red]✗[/] {r.bug_id}: {r.problem}", highlight=False)
        for leak in r.leaks:
            console.print(f"[red]✗[/] {r.bug_id}: {leak} (a spoiler: what a student sees before the fix "
                          "names the cause)", highlight=False)
        for label, run, want in (("all planted", r.planted, True), ("with its fix", r.fixed, False)):
            if run is not None and run.bug_seen is not want:
                console.print(f"[red]✗[/] {r.bug_id} ({label}): the script said BUG_SEEN={run.bug_seen}; "
                              f"its output:\n{run.output.rstrip()[-3000:]}", markup=False, highlight=False)
    console.print(f"{len(report.results)} bug(s) in {report.seconds:.0f} s; the cloud started in "
                  f"{report.start_seconds:.1f} s with them all planted and held {report.memory_mib:.0f} MiB")
    if not report.ok:
        sys.exit(1)


def _cell(check) -> str:
    if check is None:
        return "-"
    tick = "[green]✓[/]" if check.ok else "[red]✗[/]"
    return f"{tick} {check.summary}" if check.summary else tick


@click.command("reproduce")
@click.argument("bug_id")
@LAB_DIR
def reproduce_cmd(bug_id: str, root: Path) -> None:
    """Show a bug's symptom on the lab's running cloud, as its notebook does: exit 0 when the
    cloud behaves right, 1 when it shows the bug, 3 when the script could not tell."""
    ws = Workspace.open(root)
    bug = Catalog.load(Kit.default().bugs_dir, [bug_id]).select([bug_id])[0]
    with err.status(f"reproducing {bug.id} on the cloud of {ws.root}"):
        result = reproduce.run(ws, bug)
    console.print(result.output.rstrip("\n"), markup=False, highlight=False)
    verdict = {True: "[red]the cloud shows the bug[/]", False: "[green]the cloud behaves right[/]",
               None: "[yellow]no verdict: the script could not tell (see above)[/]"}[result.bug_seen]
    console.print(f"{verdict} ({bug.id}, {result.seconds:.1f} s, exit {result.exit_code})", highlight=False)
    sys.exit(result.exit_code)
