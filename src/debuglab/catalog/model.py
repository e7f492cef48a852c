"""The bug catalog: `bugs/<id>/bug.toml` + `inject.patch` + `test_hidden.py`, loaded into
frozen dataclasses. This module is the only place that knows the schema."""

from __future__ import annotations

import difflib
import posixpath
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from debuglab.catalog.errors import BugChoiceError, CatalogError, UnknownBugError

PROJECTS = ("nova", "python-novaclient")
RECORD_FILE = "verified.toml"  # bugs/<id>/verified.toml, written by `bugs verify` (debuglab.verify.records)
LAYERS = ("api", "compute-api", "scheduler", "conductor", "objects-db", "compute-manager", "client")
TECHNIQUES = (
    "pdb", "post-mortem", "remote-pdb", "pycharm", "debugpy", "unit-tests", "logs",
    "conditional-breakpoint", "tracebacks",
)
ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# Files a student never supplies to the grader, whatever a bug's scope says.
NEVER_IN_SCOPE = re.compile(
    r"(^|/)(tests?/|conftest\.py$|sitecustomize\.py$|usercustomize\.py$|setup\.cfg$|"
    r"\.stestr\.conf$|tox\.ini$)|\.pth$"
)
MIN_HINTS = 3
PACKAGES = {"nova": "nova", "python-novaclient": "novaclient"}  # each project's import package
MODULE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")


@dataclass(frozen=True)
class Feedback:
    fixed: str
    not_fixed: str
    # what the student found: the mechanism-level learning goals, shown by `check` once
    # the bug is fixed (never before: they name the cause)
    found: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bug:
    id: str
    title: str
    project: str
    upstream: str
    difficulty: int
    layer: str
    symptom: str
    objectives: tuple[str, ...]
    techniques: tuple[str, ...]
    hints: tuple[str, ...]
    scope: tuple[str, ...]
    feedback: Feedback
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    folder: Path
    # nova's own test modules around the scope; for difficulty 2 and 3 none of their tests
    # may fail with the bug planted (`bugs verify` runs them)
    visible_modules: tuple[str, ...] = ()
    # the identifiers and phrases that name the cause (the defect's function, attribute and
    # variable names, mechanism words): nothing a student sees before the fix may hold one
    spoilers: tuple[str, ...] = ()
    # how long the reference fix's tests took in `bugs verify` (bugs/<id>/verified.toml)
    reference_seconds: float | None = None

    def deadline(self, limit: float) -> float:
        """A grading run's wall-clock budget: ten times the reference fix's run plus 30 s,
        never above `limit`; `limit` when verify has not measured the bug yet."""
        if self.reference_seconds is None:
            return limit
        return min(limit, 10 * self.reference_seconds + 30)

    @property
    def inject_patch(self) -> Path:
        return self.folder / "inject.patch"

    @property
    def verification_record(self) -> Path:
        """Written by `bugs verify` (debuglab.verify.records): what the bug was verified
        against, and the reference fix's measured test time."""
        return self.folder / RECORD_FILE

    @property
    def hidden_tests(self) -> Path:
        """debuglab's own test module for this bug; never copied to a student."""
        return self.folder / "test_hidden.py"

    @property
    def hidden_module(self) -> str:
        """The module name the hidden tests take inside a grading copy."""
        return "test_" + self.id.replace("-", "_")

    @property
    def test_ids(self) -> tuple[str, ...]:
        return self.fail_to_pass + self.pass_to_pass

    def public(self) -> dict:
        """What a student may see: no layer (where the cause lives), no hints (revealed one
        at a time), scope, tests, spoilers or fix."""
        return {
            "id": self.id, "title": self.title, "project": self.project,
            "upstream": self.upstream, "difficulty": self.difficulty,
            "symptom": self.symptom, "objectives": list(self.objectives),
            "techniques": list(self.techniques),
        }


class _Fields:
    """Reads typed fields from one bug.toml, collecting every problem with its field name."""

    def __init__(self, data: dict, path: Path):
        self.data, self.path, self.problems = data, path, []

    def problem(self, field: str, text: str) -> None:
        self.problems.append(f"{self.path}: field '{field}': {text}")

    def get(self, table: dict, field: str, kind: type, label: str | None = None):
        label = label or field
        if field not in table:
            self.problem(label, "missing")
            return None
        value = table[field]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            self.problem(label, f"must be {kind.__name__}, not {type(value).__name__}")
            return None
        if kind is str and not value.strip():
            self.problem(label, "must not be empty")
            return None
        return value

    def strings(self, table: dict, field: str, label: str | None = None, min_items: int = 1):
        label = label or field
        value = self.get(table, field, list, label)
        if value is None:
            return ()
        if any(not isinstance(item, str) or not item.strip() for item in value):
            self.problem(label, "every item must be a non-empty string")
            return ()
        if len(value) < min_items:
            self.problem(label, f"needs at least {min_items} item(s), has {len(value)}")
        if len(set(value)) != len(value):
            self.problem(label, "holds duplicates")
        return tuple(value)

    def choice(self, field: str, choices: tuple[str, ...]):
        value = self.get(self.data, field, str)
        if value is not None and value not in choices:
            self.problem(field, f"'{value}' is not one of {', '.join(choices)}")
        return value


TOP_FIELDS = {
    "id", "title", "project", "upstream", "difficulty", "layer", "symptom", "objectives",
    "techniques", "hints", "scope", "feedback", "tests", "spoilers",
}


def load_bug(folder: Path) -> Bug:
    """Read and validate one bug folder; raise CatalogError listing every problem."""
    path = folder / "bug.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"{path}: missing (every folder under bugs/ is one bug)") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    f = _Fields(data, path)
    for extra in sorted(set(data) - TOP_FIELDS):
        f.problem(extra, f"unknown field (known: {', '.join(sorted(TOP_FIELDS))})")

    bug_id = f.get(data, "id", str)
    if bug_id is not None:
        if not ID_PATTERN.match(bug_id):
            f.problem("id", f"'{bug_id}' must be lowercase kebab-case (e.g. flavor-disk-ephemeral)")
        elif bug_id != folder.name:
            f.problem("id", f"'{bug_id}' must equal its folder's name '{folder.name}'")
    difficulty = f.get(data, "difficulty", int)
    if difficulty is not None and not 1 <= difficulty <= 3:
        f.problem("difficulty", f"{difficulty} is not 1, 2 or 3")
    techniques = f.strings(data, "techniques")
    for technique in techniques:
        if technique not in TECHNIQUES:
            f.problem("techniques", f"'{technique}' is not one of {', '.join(TECHNIQUES)}")
    scope = f.strings(data, "scope")
    for item in scope:
        pure = PurePosixPath(item)
        if pure.is_absolute() or ".." in pure.parts:
            f.problem("scope", f"'{item}' must be a path inside the checkout, without '..'")
        elif NEVER_IN_SCOPE.search(item):
            f.problem("scope", f"'{item}' is a test or runner file, which a fix never touches")

    feedback_table = f.get(data, "feedback", dict) or {}
    tests_table = f.get(data, "tests", dict) or {}
    feedback = Feedback(
        fixed=f.get(feedback_table, "fixed", str, "feedback.fixed") if feedback_table else None,
        not_fixed=f.get(feedback_table, "not_fixed", str, "feedback.not_fixed") if feedback_table else None,
        found=(f.strings(feedback_table, "found", "feedback.found")
               if feedback_table and "found" in feedback_table else ()),
    )
    fail_to_pass = f.strings(tests_table, "fail_to_pass", "tests.fail_to_pass") if tests_table else ()
    pass_to_pass = f.strings(tests_table, "pass_to_pass", "tests.pass_to_pass", 0) if tests_table else ()
    visible = (f.strings(tests_table, "visible_modules", "tests.visible_modules", 0)
               if tests_table and "visible_modules" in tests_table else ())
    both = set(fail_to_pass) & set(pass_to_pass)
    if both:
        f.problem("tests", f"ids in both fail_to_pass and pass_to_pass: {', '.join(sorted(both))}")

    bug = Bug(
        id=bug_id, title=f.get(data, "title", str), project=f.choice("project", PROJECTS),
        upstream=f.get(data, "upstream", str), difficulty=difficulty,
        layer=f.choice("layer", LAYERS), symptom=f.get(data, "symptom", str),
        objectives=f.strings(data, "objectives"), techniques=techniques,
        hints=f.strings(data, "hints", min_items=MIN_HINTS), scope=scope, feedback=feedback,
        fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass, folder=folder, visible_modules=visible,
        reference_seconds=_reference_seconds(folder / RECORD_FILE, f),
        spoilers=f.strings(data, "spoilers"),
    )
    _check_visible_modules(bug, f)
    _check_upstream(bug, f)
    _check_files(bug, f)
    if f.problems:
        raise CatalogError("\n".join(f.problems))
    return bug


def _reference_seconds(path: Path, f: _Fields) -> float | None:
    if not path.is_file():
        return None
    try:
        value = tomllib.loads(path.read_text()).get("reference_fix_seconds")
    except tomllib.TOMLDecodeError as exc:
        f.problems.append(f"{path}: not valid TOML ({exc}); delete it and run `debuglab bugs verify` again")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        f.problems.append(f"{path}: field 'reference_fix_seconds' must be a positive number of seconds")
        return None
    return float(value)


def _check_visible_modules(bug: Bug, f: _Fields) -> None:
    """Tiers 2 and 3 promise that no visible test fails: they name the modules that would."""
    label = "tests.visible_modules"
    if bug.difficulty in (2, 3) and not bug.visible_modules:
        f.problem(label, f"difficulty {bug.difficulty} needs the visible test modules that cover its scope "
                         "(no visible test may fail with the bug planted; `bugs verify` runs them)")
    package = PACKAGES.get(bug.project)
    if package is None:
        return
    for module in bug.visible_modules:
        if not MODULE_PATTERN.match(module) or not module.startswith(f"{package}.tests."):
            f.problem(label, f"'{module}' is not a dotted test module of {package} ({package}.tests....)")
        elif ".debuglab_hidden" in module:
            f.problem(label, f"'{module}' is a hidden test module; list nova's visible ones")
    for item in bug.scope:
        folder = PurePosixPath(item).parent.parts
        if not any(_mirrors(module, package, folder) for module in bug.visible_modules) and bug.visible_modules:
            f.problem(label, f"no module covers the scope file '{item}': add nova's own test module of it "
                             f"(under {package}.tests.unit.{'.'.join(folder[1:]) or '...'})")


def _mirrors(module: str, package: str, folder: tuple[str, ...]) -> bool:
    """nova.tests.unit.compute.test_x covers files under nova/compute/ (and below)."""
    parts = module.split(".")
    for prefix in ((package, "tests", "unit"), (package, "tests", "functional"), (package, "tests")):
        if tuple(parts[:len(prefix)]) == prefix:
            tested = (package, *parts[len(prefix):-1])
            return folder[:len(tested)] == tested
    return False


def _check_upstream(bug: Bug, f: _Fields) -> None:
    """A bug is written against the locked upstream version of its project."""
    lock = bug.folder.parent.parent / "requirements" / "upstream.lock"
    if not lock.is_file() or bug.project is None or bug.upstream is None:
        return
    locked = tomllib.loads(lock.read_text()).get("projects", {}).get(bug.project, {}).get("version")
    if locked and bug.upstream != locked:
        f.problem("upstream", f"'{bug.upstream}' is not the locked {bug.project} {locked} ({lock}): "
                              f"rewrite the patch against {locked}, or change the lock and verify every bug")


def _check_files(bug: Bug, f: _Fields) -> None:
    text = bug.inject_patch.read_text(errors="replace") if bug.inject_patch.is_file() else ""
    if not text.strip():
        f.problems.append(f"{bug.inject_patch}: missing or empty (the bug, as a unified diff)")
    elif not patch_paths(text) or not re.search(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@", text, re.MULTILINE):
        f.problems.append(f"{bug.inject_patch}: not a unified diff (no '--- a/...', '+++ b/...' and '@@' hunk): "
                          "write it with `git diff` in a checkout of the pristine upstream tree")
    else:
        for touched in patch_paths(bug.inject_patch.read_text()):
            # a test the patch adjusts (a bug that slipped past review) is not the student's to fix
            if bug.scope and touched not in bug.scope and not NEVER_IN_SCOPE.search(touched):
                f.problems.append(
                    f"{bug.inject_patch}: touches '{touched}', which is outside the bug's scope "
                    "(a fix could never be graded): add it to 'scope'"
                )
    if not bug.hidden_tests.is_file():
        f.problems.append(f"{bug.hidden_tests}: missing (the bug's hidden test module)")
    elif bug.id:
        for test_id in bug.test_ids:
            if ".debuglab_hidden." in test_id and f".debuglab_hidden.{bug.hidden_module}." not in test_id:
                f.problems.append(
                    f"{bug.folder / 'bug.toml'}: field 'tests': '{test_id}' names another bug's "
                    f"hidden module; this bug's is debuglab_hidden.{bug.hidden_module}"
                )


_DIFF_PATH = re.compile(r"^(?:---|\+\+\+) (?:[ab]/)?(\S+)", re.MULTILINE)


def patch_paths(patch_text: str) -> list[str]:
    """The files a unified diff touches, in order, relative to the checkout root."""
    seen = []
    for path in _DIFF_PATH.findall(patch_text):
        if path != "/dev/null" and path not in seen:
            seen.append(path)
    return seen


def path_problem(path: str) -> str | None:
    """Why a patch may not name `path` (None when it may): it must be a plain path inside
    the checkout."""
    pure = PurePosixPath(path)
    if pure.is_absolute():
        return f"'{path}' is an absolute path, outside the checkout"
    if ".." in pure.parts:
        plain = posixpath.normpath(path)
        if plain == ".." or plain.startswith("../"):
            return f"'{path}' leads outside the checkout"
        return f"'{path}' takes a detour through '..': name the file by its plain path, '{plain}'"
    return None


@dataclass(frozen=True)
class Catalog:
    bugs: dict[str, Bug]

    @classmethod
    def load(cls, bugs_dir: Path, only: list[str] | tuple[str, ...] | None = None) -> "Catalog":
        """Every bug folder, all validated; one CatalogError lists every broken file.
        With `only` (ids), just those folders: a bug being written elsewhere in the catalog
        does not stop work on the ones asked for."""
        bugs, problems = {}, []
        folders = sorted(p for p in bugs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        if only:
            folders = [p for p in folders if p.name in only] or folders
        for folder in folders:
            try:
                bugs[folder.name] = load_bug(folder)
            except CatalogError as exc:
                problems.append(str(exc))
        if problems:
            raise CatalogError("\n".join(problems))
        return cls(bugs)

    def select(self, ids: list[str] | tuple[str, ...] | None) -> list[Bug]:
        """The named bugs (all of them for None or empty); unknown ids raise with a suggestion."""
        if not ids:
            return list(self.bugs.values())
        chosen = []
        for bug_id in ids:
            if bug_id not in self.bugs:
                close = difflib.get_close_matches(bug_id, self.bugs, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                known = ", ".join(self.bugs) or "none"
                raise UnknownBugError(f"unknown bug '{bug_id}'{hint} (the catalog has: {known})")
            if self.bugs[bug_id] not in chosen:
                chosen.append(self.bugs[bug_id])
        return chosen


@dataclass(frozen=True)
class SetItem:
    bug_id: str
    minutes: int  # what a student is expected to need


@dataclass(frozen=True)
class BugSet:
    """A session's bugs: `instructor/sets/<name>.toml` (a 90-minute session, a half day...)."""

    name: str
    title: str
    minutes: int  # the session's length
    items: tuple[SetItem, ...]
    path: Path

    @property
    def bug_ids(self) -> list[str]:
        return [item.bug_id for item in self.items]

    @property
    def bug_minutes(self) -> int:
        return sum(item.minutes for item in self.items)


SET_FIELDS = {"title", "minutes", "bugs"}


def sets_dir(bugs_dir: Path) -> Path:
    return bugs_dir.parent / "instructor" / "sets"


def load_set(bugs_dir: Path, name: str) -> BugSet:
    """One set, validated against the catalog: known bugs, each once, minutes that fit."""
    folder = sets_dir(bugs_dir)
    path = folder / f"{name}.toml"
    known = sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []
    if not ID_PATTERN.match(name) or not path.is_file():
        raise CatalogError(f"no bug set '{name}' ({path} is missing); the sets are: {', '.join(known) or 'none'}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    f = _Fields(data, path)
    for extra in sorted(set(data) - SET_FIELDS):
        f.problem(extra, f"unknown field (known: {', '.join(sorted(SET_FIELDS))})")
    title, minutes = f.get(data, "title", str), f.get(data, "minutes", int)
    entries = f.get(data, "bugs", list) or []
    catalog = Catalog.load(bugs_dir, [e.get("id") for e in entries if isinstance(e, dict)])
    items = []
    for n, entry in enumerate(entries, 1):
        label = f"bugs[{n}]"
        if not isinstance(entry, dict):
            f.problem(label, "must be a table with id and minutes ([[bugs]])")
            continue
        bug_id, bug_minutes = f.get(entry, "id", str, f"{label}.id"), f.get(entry, "minutes", int, f"{label}.minutes")
        if bug_id is not None and bug_id not in catalog.bugs:
            close = difflib.get_close_matches(bug_id, catalog.bugs, n=1)
            f.problem(f"{label}.id", f"unknown bug '{bug_id}'" + (f"; did you mean '{close[0]}'?" if close else ""))
        elif bug_id in [i.bug_id for i in items]:
            f.problem(f"{label}.id", f"'{bug_id}' is in the set twice")
        if bug_minutes is not None and bug_minutes <= 0:
            f.problem(f"{label}.minutes", f"{bug_minutes} is not a positive number of minutes")
        if bug_id is not None and bug_minutes is not None:
            items.append(SetItem(bug_id, bug_minutes))
    if not entries:
        f.problem("bugs", "a set needs at least one bug ([[bugs]] id = ..., minutes = ...)")
    if minutes is not None and items and sum(i.minutes for i in items) > minutes:
        f.problem("minutes", f"the bugs need {sum(i.minutes for i in items)} minutes, more than the session's {minutes}")
    if f.problems:
        raise CatalogError("\n".join(f.problems))
    return BugSet(name, title, minutes, tuple(items), path)


ALL_BUGS, NO_BUGS = "all", "none"  # the two words --bugs takes besides ids


def parse_bug_set(text: str | None) -> list[str] | None:
    """`--bugs a,b`, `--bugs all` (or no --bugs at all) or `--bugs none` into bug ids: []
    means the whole catalog, None no bug at all (a pristine lab). A value that names
    nothing (`""`, `","`, `" "`) is bad input, not the whole catalog."""
    if text is None or text.strip() == ALL_BUGS:
        return []
    if text.strip() == NO_BUGS:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise BugChoiceError(f"--bugs {text!r} names no bug: give bug ids (a,b), '{ALL_BUGS}' for the whole "
                             f"catalog or '{NO_BUGS}' for a lab without bugs")
    if ALL_BUGS in ids or NO_BUGS in ids:
        raise BugChoiceError(f"--bugs {text!r}: '{ALL_BUGS}' and '{NO_BUGS}' stand alone, not in a list of ids")
    return ids
