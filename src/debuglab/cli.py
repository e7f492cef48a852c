"""The `debuglab` command: parsing and printing only; the work is in the modules."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from debuglab import jupyterlab, labtest, notebooks, rebuild, reproduce, verify, workspace
from debuglab.cloud import supervisor as cloud_supervisor
from debuglab.cloud.commands import attach, cloud, print_cloud
from debuglab.catalog import Catalog, load_set, parse_bug_set, sets_dir
from debuglab.console import console, err, steps
from debuglab.errors import DebuglabError, Terminated, explain_os_error, terminate_like_interrupt
from debuglab.kit import Kit
from debuglab.upstream import checkout_version



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


DIR = click.option("--dir", "root", type=click.Path(path_type=Path), default=Path("lab"),
                   show_default=True, help="The lab workspace.")


@main.command()
@DIR
@click.option("--bugs", "bug_set", help="Comma-separated bug ids, or 'all' (default).")
@click.option("--set", "set_name", metavar="NAME", help="Plant a session's set of bugs (instructor/sets/NAME.toml).")
@click.option("--notebook-port", type=click.IntRange(1, 65535), default=None,
              help="JupyterLab's port on 127.0.0.1 (default: the last start's, else 8888).")
def up(root: Path, bug_set: str | None, set_name: str | None, notebook_port: int | None) -> None:
    """Set up the lab (creating it if needed), start its mini-cloud and JupyterLab, say where
    everything is. Run it again at any time: what runs is left running."""
    if not (root / workspace.LAB_TOML).is_file():
        ids = chosen_bugs(bug_set, set_name)
        with steps("building the lab") as on_step:
            workspace.create(root, ids, on_step=on_step)
    ws = workspace.Workspace.open(root)
    notebooks.register_kernel(ws)
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


def chosen_bugs(bug_set: str | None, set_name: str | None) -> list[str]:
    """--bugs a,b or --set NAME (instructor/sets/NAME.toml) into bug ids; [] means all."""
    if bug_set and set_name:
        raise click.UsageError("give --bugs or --set, not both")
    if set_name:
        return load_set(Kit.default().bugs_dir, set_name).bug_ids
    return parse_bug_set(bug_set)


SET = click.option("--set", "set_name", metavar="NAME",
                   help="Plant a session's set of bugs: instructor/sets/NAME.toml (`debuglab bugs sets`).")


@lab.command("create")
@DIR
@click.option("--bugs", "bug_set", help="Comma-separated bug ids, or 'all' (default).")
@SET
@click.option("--force", is_flag=True, help="Rebuild an existing lab (your changes are saved as patches first).")
def lab_create(root: Path, bug_set: str | None, set_name: str | None, force: bool) -> None:
    """Build a lab: nova and python-novaclient checkouts with the bugs planted, and a venv."""
    start = time.monotonic()
    ids = chosen_bugs(bug_set, set_name)
    with steps("building the lab") as on_step:
        if force and (root / workspace.LAB_TOML).is_file():
            ws = rebuild.rebuild(root, ids, on_step=on_step)
        else:
            ws = workspace.create(root, ids, force=force, on_step=on_step)
    notebooks.register_kernel(ws)
    notebooks.student_copy(ws)  # the lab's own notebooks, made now (refreshed at each JupyterLab start)
    console.print(f"lab ready in {time.monotonic() - start:.1f} s")
    _print_lab(ws)


def _print_lab(ws: workspace.Workspace) -> None:
    info = ws.info
    table = Table(title=f"lab at {ws.root}")
    for column in ("checkout", "upstream", "baseline commit", "bugs"):
        table.add_column(column)
    for name, entry in info["projects"].items():
        table.add_row(entry["path"], f"{name} {entry['version']}", entry["baseline_commit"][:12], str(len(entry["bugs"])))
    console.print(table)
    console.print(f"venv: {ws.venv}   (source {ws.venv}/bin/activate)")
    console.print(f"your change at any time: git -C {ws.checkout('nova')} diff")
    if ws.saved_work.is_dir() and any(ws.saved_work.iterdir()):
        console.print(f"[yellow]saved earlier work:[/] {ws.saved_work}")


@main.group()
def bugs() -> None:
    """The bug catalog."""


LAB_BUGS = click.option("--dir", "root", type=click.Path(path_type=Path), default=None,
                        help="A lab: only the bugs planted in it (default: the whole catalog).")


def _planted(root: Path | None, bug_ids: list[str] | None = None) -> list[str] | None:
    """The bugs planted in the lab at `root` (None without --dir); an id not planted there is bad input."""
    if root is None:
        return None
    planted = workspace.Workspace.open(root).bugs()
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
    console.print(f"[bold]{info['title']}[/]  ({info['id']})", highlight=False)
    console.print(f"{info['project']} {info['upstream']} · layer {info['layer']} · difficulty {'★' * info['difficulty']}")
    console.print(f"\n[bold]Symptom[/]\n{info['symptom'].strip()}", highlight=False)
    console.print("\n[bold]You will learn to[/]", highlight=False)
    for objective in info["objectives"]:
        console.print(f"  • {objective}", highlight=False)
    console.print(f"\n[bold]Techniques[/]: {', '.join(info['techniques'])}")


@bugs.command("verify")
@click.argument("bug_ids", nargs=-1)
@click.option("--lab", "root", type=click.Path(path_type=Path), default=Path("lab"), show_default=True,
              help="The lab whose venv runs the tests.")
@click.option("--jobs", type=int, default=None, help="Test workers at once (default: the number of cores).")
@click.option("--live", is_flag=True, help="Instead: prove every symptom on a scratch lab's running cloud "
                                          "(planted: the script shows the bug; with its fix: it does not).")
def bugs_verify(bug_ids: tuple[str, ...], root: Path, jobs: int | None, live: bool) -> None:
    """Check every bug, Defects4J-style: pristine, injected, fixed, alternative, all together,
    and for tiers 2 and 3 nova's visible tests; with --live, every symptom on a running cloud."""
    if live:
        return _verify_live(list(bug_ids))
    ws = workspace.Workspace.open(root)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  TextColumn("{task.completed}/{task.total} runs"), console=err, transient=True) as progress:
        task = progress.add_task("verifying")

        def on_run(done: int, total: int, label: str) -> None:
            progress.update(task, completed=done, total=total, description=label)

        report = verify.verify(ws, list(bug_ids), jobs=jobs, on_run=on_run)
    table = Table(title="bug verification")
    for column in ("bug", *verify.CHECK_TITLES.values(), "verdict"):
        table.add_column(column)
    for bug_report in report.bugs:
        cells = [_cell(bug_report.checks.get(key)) for key in verify.CHECK_TITLES]
        table.add_row(bug_report.bug_id, *cells, "[green]ok[/]" if bug_report.ok else "[red]DEVIATES[/]")
    console.print(table)
    for bug_report in report.bugs:
        for problem in bug_report.problems:
            console.print(f"[red]✗[/] {bug_report.bug_id}: {problem}", highlight=False)
    console.print(
        f"{report.tests_run} test results in {report.seconds:.1f} s "
        f"({report.tests_run / max(report.seconds, 1e-9):.1f} tests/s, {report.runs} worker runs)"
    )
    if not report.ok:
        sys.exit(1)


def _verify_live(bug_ids: list[str]) -> None:
    from debuglab import verify_live

    with steps("proving every symptom on a running cloud") as on_step:
        report = verify_live.verify_live(bug_ids, on_step=on_step)
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


@main.command("reproduce")
@click.argument("bug_id")
@DIR
def reproduce_cmd(bug_id: str, root: Path) -> None:
    """Show a bug's symptom on the lab's running cloud, as its notebook does: exit 0 when the
    cloud behaves right, 1 when it shows the bug, 3 when the script could not tell."""
    ws = workspace.Workspace.open(root)
    bug = Catalog.load(Kit.default().bugs_dir, [bug_id]).select([bug_id])[0]
    with err.status(f"reproducing {bug.id} on the cloud of {ws.root}"):
        result = reproduce.run(ws, bug)
    console.print(result.output.rstrip("\n"), markup=False, highlight=False)
    verdict = {True: "[red]the cloud shows the bug[/]", False: "[green]the cloud behaves right[/]",
               None: "[yellow]no verdict: the script could not tell (see above)[/]"}[result.bug_seen]
    console.print(f"{verdict} ({bug.id}, {result.seconds:.1f} s, exit {result.exit_code})", highlight=False)
    sys.exit(result.exit_code)


@main.command("test")
@click.argument("targets", nargs=-1)
@DIR
@click.option("--list", "list_only", is_flag=True, help="Only list the test ids the targets select.")
@click.option("--pdb", "use_pdb", is_flag=True, help="Then stop pdb in the first failure (post-mortem).")
def test_cmd(targets: tuple[str, ...], root: Path, list_only: bool, use_pdb: bool) -> None:
    """nova's visible tests of your checkout, as `tox -e py3 -- TARGET` would run them: a module,
    a package, a class, a test id, or a path such as nova/scheduler (default: every unit test)."""
    ws = workspace.Workspace.open(root)
    with err.status("finding the tests"):
        listing = labtest.list_ids(ws, list(targets))
    if list_only:
        for test_id in listing.ids:
            console.print(test_id, highlight=False, markup=False)
        console.print(f"{len(listing.ids)} test(s)")
        return
    start = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task(f"{listing.project} tests", total=len(listing.ids))
        run = labtest.run(ws, listing, on_progress=lambda done, total: progress.update(task, completed=done))
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
        labtest.post_mortem(ws, listing.project, failed[0].id)
    if failed:
        sys.exit(1)


@main.command("inject")
@click.argument("bug_ids", nargs=-1)
@click.option("--checkout", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True,
              help="The nova or python-novaclient checkout to plant the bugs in.")
@click.option("--force", is_flag=True, help="Save uncommitted work as a patch, set it aside, then inject.")
def inject_cmd(bug_ids: tuple[str, ...], checkout: Path, force: bool) -> None:
    """Plant bugs in a checkout (all of its project's bugs by default): all or none."""
    from debuglab import inject

    catalog = Catalog.load(Kit.default().bugs_dir, bug_ids)
    found = checkout_version(checkout)
    project = found[0] if found else None
    chosen = catalog.select(list(bug_ids)) if bug_ids else [b for b in catalog.bugs.values() if b.project == project]
    ws = workspace.Workspace.containing(checkout)
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


from debuglab.provision import commands as provision_commands  # noqa: E402

main.add_command(cloud)
main.add_command(attach)

for _command in provision_commands.COMMANDS:  # provision, collect, reset, tunnel
    main.add_command(_command)
main.add_command(provision_commands.class_group)  # class up / class down

from debuglab.grade.commands import check, grade  # noqa: E402

main.add_command(check)
main.add_command(grade)

from debuglab.notebook_commands import notebook, print_jupyterlab  # noqa: E402

main.add_command(notebook)
