"""Reports of grades: a rich table, JSON with a versioned schema, JUnit XML, and for a
class a gradebook CSV and a static HTML gradebook.

JSON schema "debuglab.grade/1" (one object; `grades` holds one entry per student):

    {
      "schema": "debuglab.grade/1",
      "generated": "2026-11-25T11:00:00+00:00",   # UTC, ISO 8601
      "grades": [{
        "student": str, "source": str,            # the checkout or patch file graded
        "score": float, "max_score": float,
        "seconds": float, "sandbox": [str],       # sandbox features in force
        "problem": str | null,                    # the submission could not be read
        "errors": [str],                          # ids of the bugs in error: not graded, to retry
        "not_applied": [{"path": str, "reason": str}],
        "bugs": [{
          "id": str, "title": str,
          "verdict": "fixed" | "not-fixed" | "regression" | "rejected" | "error",
          "graded": bool,                         # false for an error: no verdict on the fix
          "log": str | null,                      # an error's log
          "score": float, "max_score": float,
          "reason": str,                          # for the instructor
          "feedback": str,                        # for the student
          "files": [str],                         # in-scope files whose change was graded
          "fail_to_pass": {"passed": int, "total": int},
          "pass_to_pass": {"passed": int, "total": int},
          "failing": [str],                       # test ids that did not pass (instructor only)
          "seconds": float, "ran": bool
        }]
      }]
    }

A reader should check "schema"; fields are only ever added within a version.

An `error` is no verdict on a fix (the grader could not finish): every report marks it
apart from `not-fixed`. The CSV leaves its score cell empty (no grade, rather than 0)
and counts it in an `errors` column; the HTML gives it a colour and a legend of its own;
JUnit reports it as an <error> (the grader's) while every verdict on the student's work
that is not `fixed` is a <failure>; the JSON marks it `"graded": false` and lists it in
`errors`. `grade --submissions --retry-errors` reads `grades.json` back (`read_gradebook`)
and grades those bugs again.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.table import Table

from debuglab.grade.errors import GradeError
from debuglab.grade.scope import NotApplied
from debuglab.grade.verdict import (
    ERROR,
    FIXED,
    NOT_FIXED,
    REGRESSION,
    REJECTED,
    VERDICTS,
    BugVerdict,
    Grade,
)

SCHEMA = "debuglab.grade/1"
STYLE = {FIXED: "green", NOT_FIXED: "yellow", REGRESSION: "magenta", REJECTED: "red", ERROR: "blue"}
GRADES_JSON = "grades.json"  # in a gradebook folder: what --retry-errors reads back
ERROR_LABEL = "error (not graded)"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def as_dict(grade: Grade, *, student_view: bool = False) -> dict:
    """A grade as plain data. The student view drops what only an instructor may see
    (test ids and the instructor's reasons)."""
    bugs = []
    for v in grade.verdicts:
        entry = {
            "id": v.bug_id, "title": v.title, "verdict": v.verdict, "score": v.score,
            "max_score": v.max_score, "reason": v.reason, "feedback": v.feedback, "files": list(v.files),
            "fail_to_pass": {"passed": v.fail_to_pass[0], "total": v.fail_to_pass[1]},
            "pass_to_pass": {"passed": v.pass_to_pass[0], "total": v.pass_to_pass[1]},
            "failing": list(v.failing), "seconds": round(v.seconds, 2), "ran": v.ran,
            "graded": v.graded, "log": v.log,
        }
        if student_view:
            for key in ("reason", "failing", "fail_to_pass", "pass_to_pass"):
                entry.pop(key)
        bugs.append(entry)
    return {
        "student": grade.student, "source": grade.source, "score": grade.score,
        "max_score": grade.max_score, "seconds": round(grade.seconds, 2), "sandbox": list(grade.sandbox),
        "problem": grade.problem, "errors": [v.bug_id for v in grade.verdicts if not v.graded],
        "not_applied": [{"path": n.path, "reason": n.reason} for n in grade.not_applied],
        "bugs": bugs,
    }


def to_json(grades: list[Grade]) -> str:
    return json.dumps({"schema": SCHEMA, "generated": _now(), "grades": [as_dict(g) for g in grades]},
                      indent=2) + "\n"


def from_dict(data: dict) -> Grade:
    """A grade as `as_dict` wrote it (the instructor's view) back."""
    verdicts = []
    for b in data["bugs"]:
        if b["verdict"] not in VERDICTS:
            raise ValueError(f"unknown verdict {b['verdict']!r}")
        verdicts.append(BugVerdict(
            b["id"], b["title"], b["verdict"], b.get("reason", ""), b.get("feedback", ""), float(b["score"]),
            float(b["max_score"]), tuple(b.get("files", ())),
            (b["fail_to_pass"]["passed"], b["fail_to_pass"]["total"]),
            (b["pass_to_pass"]["passed"], b["pass_to_pass"]["total"]), tuple(b.get("failing", ())),
            float(b.get("seconds", 0.0)), bool(b.get("ran")), b.get("log")))
    return Grade(data["student"], data["source"], tuple(verdicts),
                 tuple(NotApplied(n["path"], n["reason"]) for n in data.get("not_applied", ())),
                 float(data.get("seconds", 0.0)), tuple(data.get("sandbox", ())), data.get("problem"))


def read_gradebook(folder: Path) -> list[Grade]:
    """The grades a gradebook folder holds (its grades.json)."""
    path = Path(folder) / GRADES_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GradeError(f"{path}: no previous gradebook to retry the errors of ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise GradeError(f"{path}: not a {SCHEMA} gradebook")
    try:
        return [from_dict(g) for g in data["grades"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise GradeError(f"{path}: unreadable grade ({exc!r})") from None


def errors_of(grades: list[Grade], bug_ids: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """student -> the bugs whose verdict was error (of `bug_ids`, if given)."""
    out = {}
    for g in grades:
        bugs = tuple(v.bug_id for v in g.verdicts if v.verdict == ERROR and (not bug_ids or v.bug_id in bug_ids))
        if bugs:
            out[g.student] = bugs
    return out


def merge(previous: list[Grade], retried: list[Grade]) -> list[Grade]:
    """The previous gradebook with each retried bug's new verdict in place of its error."""
    new = {g.student: g for g in retried}
    out = []
    for g in previous:
        again = new.get(g.student)
        if again is None:
            out.append(g)
            continue
        fresh = {v.bug_id: v for v in again.verdicts}
        out.append(Grade(g.student, g.source, tuple(fresh.get(v.bug_id, v) for v in g.verdicts), g.not_applied,
                         g.seconds + again.seconds, again.sandbox or g.sandbox, again.problem))
    return out


def table(grade: Grade, *, student_view: bool = False) -> Table:
    title = f"{grade.student}: {grade.score:g} / {grade.max_score:g}"
    t = Table(title=title, show_lines=True)
    t.add_column("bug", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("score", justify="right")
    if not student_view:
        t.add_column("tests (f2p, p2p)", no_wrap=True)
    t.add_column("feedback" if student_view else "why")
    for v in grade.verdicts:
        cells = [v.bug_id, f"[{STYLE[v.verdict]}]{v.verdict if v.graded else ERROR_LABEL}[/]",
                 f"{v.score:g}" if v.graded else "-"]
        if not student_view:
            cells.append(f"{v.fail_to_pass[0]}/{v.fail_to_pass[1]}, {v.pass_to_pass[0]}/{v.pass_to_pass[1]}"
                         if v.ran else "-")
        cells.append(v.feedback if student_view else v.reason + (f" (log: {v.log})" if v.log else ""))
        t.add_row(*cells)
    return t


def class_table(grades: list[Grade]) -> Table:
    bug_ids = [v.bug_id for v in grades[0].verdicts] if grades else []
    t = Table(title=f"gradebook: {len(grades)} submission(s)")
    t.add_column("student", no_wrap=True)
    for bug_id in bug_ids:
        t.add_column(bug_id)
    t.add_column("score", justify="right")
    for g in grades:
        t.add_row(g.student, *(f"[{STYLE[v.verdict]}]{v.verdict if v.graded else ERROR_LABEL}[/]" for v in g.verdicts),
                  f"{g.score:g}/{g.max_score:g}")
    return t


def to_junit(grades: list[Grade]) -> str:
    """One <testsuite> per student, one <testcase> per bug: fixed passes; not-fixed,
    regression and rejected (verdicts on the student's work) fail; error (the grader's, no
    verdict) is an <error>."""
    suites = ET.Element("testsuites", name="debuglab grade")
    for g in grades:
        counts = {"failures": 0, "errors": 0}
        suite = ET.SubElement(suites, "testsuite", name=g.student, tests=str(len(g.verdicts)),
                              time=f"{g.seconds:.2f}", timestamp=_now())
        for v in g.verdicts:
            case = ET.SubElement(suite, "testcase", classname=f"debuglab.{g.student}", name=v.bug_id,
                                 time=f"{v.seconds:.2f}")
            if v.verdict in (NOT_FIXED, REGRESSION, REJECTED):
                counts["failures"] += 1
                node = ET.SubElement(case, "failure", message=f"{v.verdict}: {v.reason}", type=v.verdict)
                node.text = v.feedback
            elif v.verdict == ERROR:
                counts["errors"] += 1
                log = f" (log: {v.log})" if v.log else ""
                node = ET.SubElement(case, "error", message=f"{ERROR_LABEL}: {v.reason}{log}", type=v.verdict)
                node.text = v.feedback
        suite.set("failures", str(counts["failures"]))
        suite.set("errors", str(counts["errors"]))
        if g.not_applied:
            out = ET.SubElement(suite, "system-out")
            out.text = "not applied:\n" + "\n".join(f"{n.path}: {n.reason}" for n in g.not_applied)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _csv_safe(value: str) -> str:
    """No spreadsheet formula injection through a student's name."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(grades: list[Grade]) -> str:
    """A gradebook: a row per student, a column per bug (its score), the total and the
    maximum; a `<bug> verdict` column each. Imports into Moodle or Canvas as a CSV. A bug
    in error has no score (an empty cell, not 0), "error (not graded)" as its verdict,
    and is counted in the `errors` column: grade it again (--retry-errors)."""
    bug_ids = [v.bug_id for v in grades[0].verdicts] if grades else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *bug_ids, "total", "max", "errors", *(f"{b} verdict" for b in bug_ids)])
    for g in grades:
        writer.writerow([_csv_safe(g.student), *(f"{v.score:g}" if v.graded else "" for v in g.verdicts),
                         f"{g.score:g}", f"{g.max_score:g}", str(sum(not v.graded for v in g.verdicts)),
                         *(v.verdict if v.graded else ERROR_LABEL for v in g.verdicts)])
    return out.getvalue()


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.35em .7em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.fixed{background:#d8f5d8}td.not-fixed{background:#fff3c4}td.regression{background:#f3d9f7}
td.rejected{background:#f9d0d0}td.error{background:#d6e4f5;font-style:italic}
td.score{text-align:right;font-weight:bold}
details{margin:.3em 0}summary{cursor:pointer}
.small{color:#666;font-size:.85em}
.error-note{background:#d6e4f5;padding:.5em .8em}
"""


def to_html(grades: list[Grade], title: str = "debuglab gradebook") -> str:
    """A static page: the gradebook table, then each student's details (feedback, reasons,
    files not applied). Everything from a submission is escaped."""
    esc = html.escape
    bug_ids = [v.bug_id for v in grades[0].verdicts] if grades else []
    rows = []
    for g in grades:
        cells = "".join(f'<td class="{esc(v.verdict)}" title="{esc(v.reason)}">'
                        f'{esc(v.verdict if v.graded else ERROR_LABEL)}</td>' for v in g.verdicts)
        rows.append(f'<tr><td><a href="#s-{esc(g.student)}">{esc(g.student)}</a></td>{cells}'
                    f'<td class="score">{g.score:g} / {g.max_score:g}</td></tr>')
    counts = {b: sum(1 for g in grades if g.verdict(b).verdict == FIXED) for b in bug_ids}
    errors = {b: sum(1 for g in grades if not g.verdict(b).graded) for b in bug_ids}
    footer = "".join(f"<td>{counts[b]} / {len(grades)} fixed"
                     + (f'<div class="small">{errors[b]} not graded (error)</div>' if errors[b] else "")
                     + "</td>" for b in bug_ids)
    n_errors = sum(errors.values())
    legend = (f'<p class="error-note">{n_errors} bug(s) in error: the grader could not finish them, which '
              "is no verdict on the students' work (no score, not \"not-fixed\"). Grade them again with "
              "<code>debuglab grade --submissions DIR --gradebook DIR --retry-errors</code>; each has a log.</p>"
              if n_errors else "")
    details = []
    for g in grades:
        items = "".join(
            f"<li><b>{esc(v.bug_id)}</b>: <span class=\"{esc(v.verdict)}\">{esc(v.verdict)}</span> — "
            f"{esc(v.reason)}<div class=\"small\">feedback: {esc(v.feedback)}</div>"
            + (f'<div class="small">log: <code>{esc(v.log)}</code></div>' if v.log else "") + "</li>"
            for v in g.verdicts)
        skipped = "".join(f"<li><code>{esc(n.path)}</code>: {esc(n.reason)}</li>" for n in g.not_applied)
        details.append(
            f'<details id="s-{esc(g.student)}"><summary>{esc(g.student)} — {g.score:g} / {g.max_score:g}'
            f'</summary><ul>{items}</ul>'
            + (f"<p>Not applied:</p><ul>{skipped}</ul>" if skipped else "")
            + (f"<p>Problem: {esc(g.problem)}</p>" if g.problem else "")
            + f'<p class="small">source: {esc(g.source)}</p></details>')
    head = "".join(f"<th>{esc(b)}</th>" for b in bug_ids)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{_CSS}</style></head>
<body><h1>{esc(title)}</h1>
<p class="small">{len(grades)} submission(s), generated {esc(_now())} by debuglab (schema {SCHEMA})</p>
{legend}
<table id="gradebook"><thead><tr><th>student</th>{head}<th>score</th></tr></thead>
<tbody>{''.join(rows)}</tbody>
<tfoot><tr><th>fixed</th>{footer}<td></td></tr></tfoot></table>
<h2>Details</h2>
{''.join(details)}
</body></html>
"""
