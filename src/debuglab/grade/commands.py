"""The click commands `check` (a student's instant feedback) and `grade` (an instructor's
grading of one student or a class): parsing and printing only."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from debuglab.catalog.model import Catalog, parse_bug_set
from debuglab.core.kit import Kit
from debuglab.core.options import LAB_DIR, SECONDS, WORKERS
from debuglab.grade import grader, hints, reports, submission
from debuglab.grade.errors import GradeError
from debuglab.grade.sandbox import Limits
from debuglab.grade.verdict import ERROR, FIXED
from debuglab.lab.workspace import LAB_TOML, Workspace

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
LOGS = Path(".debuglab") / "logs"  # a check's error logs, in the student's lab

TIMEOUT = click.option("--timeout", type=SECONDS, default=Limits.timeout, show_default=True,
                       help="Wall-clock seconds a bug's tests may take.")
JOBS = click.option("--jobs", type=WORKERS, default=None, help="Test workers at once (default: the number of cores).")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


@click.command("check")
@click.argument("bug_ids", nargs=-1)
@LAB_DIR
@TIMEOUT
def check(bug_ids: tuple[str, ...], root: Path, timeout: float) -> None:
    """Check your fixes: per bug, fixed or not, with feedback and your next hint."""
    ws = Workspace.open(root)
    catalog = Catalog.load(Kit.default().bugs_dir)
    if not bug_ids and not ws.bugs():
        raise GradeError(f"no bug is planted in the lab {ws.root} (built with --bugs none): nothing to check")
    chosen = catalog.select(list(bug_ids) or ws.bugs())
    with _progress() as progress:
        task = progress.add_task("checking your fixes", total=len(chosen))
        # the lab's every checkout: each bug is graded against its own project's change
        sub = submission.from_checkout(ws.root, student=ws.root.name)
        options = grader.Options(Limits(timeout=timeout), log_dir=ws.root / LOGS)
        result = grader.grade(sub, [b.id for b in chosen], ws.python, options=options,
                              on_done=lambda s, b, v: progress.advance(task))
    verdicts, not_applied = list(result.verdicts), list(result.not_applied)
    for v in verdicts:
        mark = ("[green]✓ fixed[/]" if v.verdict == FIXED else "[blue]? not tested (error)[/]" if v.verdict == ERROR
                else f"[yellow]✗ {v.verdict}[/]")
        console.print(f"\n[bold]{v.bug_id}[/] — {v.title}: {mark}", highlight=False)
        console.print(f"  {v.feedback}", highlight=False, markup=False)
        found = catalog.bugs[v.bug_id].feedback.found if v.verdict == FIXED else ()
        if found:
            console.print("  [bold]what you found:[/]", highlight=False)
            for item in found:
                console.print(f"  • {item}", highlight=False, markup=False)
        if v.verdict not in (FIXED, ERROR):  # an error is no verdict on the fix: it spends no hint
            hint = hints.reveal_next(ws.root, catalog.bugs[v.bug_id])
            if hint:
                console.print(f"  [cyan]hint {hint.number}/{hint.of}:[/] ", end="", highlight=False)
                console.print(hint.text, highlight=False, markup=False)
            else:
                console.print("  [dim]you have seen every hint for this bug[/]")
    if not_applied:
        console.print("\n[bold]not applied[/] (outside every bug's scope, or never taken from a student):")
        for item in not_applied:
            console.print(f"  {item.path}: {item.reason}", highlight=False, markup=False)
    fixed = sum(v.verdict == FIXED for v in verdicts)
    errors = sum(v.verdict == ERROR for v in verdicts)
    console.print(f"\n{fixed} of {len(verdicts)} bug(s) fixed")
    if errors:
        console.print(f"{errors} bug(s) could not be tested, which is not your fault: run `debuglab check` again, "
                      f"and if it happens again ask your instructor (logs in {ws.root / LOGS})",
                      highlight=False, markup=False)


def _python_for(lab: Path | None, checkout: Path | None) -> Path:
    """The venv that runs the tests: --lab's, else ./lab's, else the checkout's own lab's."""
    if lab is not None:
        return Workspace.open(lab).python
    if (Path("lab") / LAB_TOML).is_file():
        return Workspace.open(Path("lab")).python
    if checkout is not None:
        _, ws = submission.resolve_checkout(checkout)
        if ws is not None:
            return ws.python
    raise GradeError("no lab venv to run the tests with: pass --lab DIR (an instructor's lab)")


@click.command("grade")
@click.option("--checkout", type=click.Path(path_type=Path), help="One student's lab or nova checkout.")
@click.option("--patch", "patch_file", type=click.Path(path_type=Path, dir_okay=False),
              help="One student's change as a .patch file.")
@click.option("--submissions", type=click.Path(path_type=Path, file_okay=False),
              help="A class: a folder with one .patch, lab or checkout per student.")
@click.option("--bugs", "bug_set", metavar="IDS", help="Comma-separated bug ids, or 'all' (default).")
@click.option("--lab", type=click.Path(path_type=Path, file_okay=False),
              help="The (instructor's) lab whose venv runs the tests (default: ./lab, else the checkout's).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "junit"]), default="table", show_default=True)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="Write the report here.")
@click.option("--gradebook", type=click.Path(path_type=Path, file_okay=False),
              help="For a class: write gradebook.csv, gradebook.html, grades.json and junit.xml here.")
@click.option("--student", help="The student's name in reports (default: the folder's or file's).")
@click.option("--retry-errors", is_flag=True,
              help="With --submissions and --gradebook: grade again only the bugs whose verdict in that "
                   "gradebook was error, and update it.")
@TIMEOUT
@JOBS
def grade(checkout, patch_file, submissions, bug_set, lab, fmt, output, gradebook, student, retry_errors,
          timeout, jobs) -> None:
    """Grade one student (--checkout or --patch) or a class (--submissions)."""
    given = [x for x in (checkout, patch_file, submissions) if x is not None]
    if len(given) != 1:
        raise GradeError("give exactly one of --checkout DIR, --patch FILE or --submissions DIR")
    bug_ids = parse_bug_set(bug_set)  # bad input before any work
    if bug_ids is None:
        raise GradeError("--bugs none grades nothing: give the bug ids to grade, or 'all' (the default)")
    previous = None
    if retry_errors:
        if submissions is None or gradebook is None:
            raise GradeError("--retry-errors grades a class again: give --submissions DIR and the --gradebook DIR "
                             "its first grading wrote")
        previous = reports.read_gradebook(gradebook)
    if checkout is not None:
        subs = [submission.from_checkout(checkout, student)]
    elif patch_file is not None:
        subs = [submission.from_patch_file(patch_file, student)]
    else:
        subs = submission.gather(submissions)
        if not subs:
            raise GradeError(f"{submissions}: no submissions in it (.patch files, labs or checkouts)")
    python = _python_for(lab, checkout)
    n_bugs = len(Catalog.load(Kit.default().bugs_dir).select(bug_ids))
    only = None
    if previous is not None:
        only = reports.errors_of(previous, bug_ids)
        subs = [s for s in subs if s.student in only]
        bug_ids = sorted({b for bugs in only.values() for b in bugs})
        n_bugs = 0
        err.print(f"retrying {sum(map(len, only.values()))} error(s) of {len(only)} submission(s) "
                  f"of {gradebook / reports.GRADES_JSON}")
    log_dir = gradebook / "logs" if gradebook is not None else None
    options = grader.Options(Limits(timeout=timeout), jobs=jobs, log_dir=log_dir, only=only)
    total = sum(map(len, only.values())) if only is not None else len(subs) * n_bugs
    with _progress() as progress:
        task = progress.add_task(f"grading {len(subs)} submission(s)", total=total)
        grades = grader.grade_many(subs, bug_ids, python, options=options,
                                   on_done=lambda s, b, v: progress.advance(task)) if subs else []
    if previous is not None:
        grades = reports.merge(previous, grades)
    if gradebook is not None:
        gradebook.mkdir(parents=True, exist_ok=True)
        (gradebook / "gradebook.csv").write_text(reports.to_csv(grades))
        (gradebook / "gradebook.html").write_text(reports.to_html(grades))
        (gradebook / reports.GRADES_JSON).write_text(reports.to_json(grades))
        (gradebook / "junit.xml").write_text(reports.to_junit(grades))
        err.print(f"gradebook written to {gradebook}/ (gradebook.csv, gradebook.html, grades.json, junit.xml)")
    if fmt == "json":
        text = reports.to_json(grades)
    elif fmt == "junit":
        text = reports.to_junit(grades)
    else:
        text = None
    if text is not None:
        if output:
            output.write_text(text)
        else:
            sys.stdout.write(text)
        return
    if len(grades) > 1:
        console.print(reports.class_table(grades))
    for g in grades if len(grades) == 1 else []:
        console.print(reports.table(g))
        for item in g.not_applied:
            console.print(f"  not applied: {item.path} ({item.reason})", highlight=False, markup=False)
    if output:
        output.write_text(reports.to_json(grades))
