"""Splitting a student's diff into per-file changes and keeping, per bug, only those in
the bug's scope. Everything else is listed as "not applied", with why.

Never taken from a student, whatever a scope says: anything under a tests/ folder,
conftest.py, sitecustomize.py, usercustomize.py, .pth files, setup.cfg, .stestr.conf,
tox.ini (`catalog.NEVER_IN_SCOPE`). A symlink, a binary change or a rename that touches a
file in scope rejects that bug's fix, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from debuglab.catalog.model import NEVER_IN_SCOPE, Bug, path_problem
from debuglab.grade.errors import SubmissionError

MAX_FILE_DIFF = 1 << 20  # bytes of diff per file in scope; a real fix is a few lines
SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"


@dataclass(frozen=True)
class FileChange:
    """One file's section of a diff."""

    old_path: str | None  # None for a new file
    new_path: str | None  # None for a deleted file
    text: str  # the section, header included, as `git apply` takes it
    binary: bool = False
    symlink: bool = False
    submodule: bool = False
    renamed: bool = False
    copied: bool = False

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "?"

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p in (self.old_path, self.new_path) if p))

    @property
    def kind(self) -> str:
        if self.renamed:
            return "renamed"
        if self.copied:
            return "copied"
        if self.old_path is None:
            return "added"
        if self.new_path is None:
            return "deleted"
        return "modified"


@dataclass(frozen=True)
class NotApplied:
    path: str
    reason: str


@dataclass(frozen=True)
class BugChanges:
    """What of a diff counts for one bug."""

    bug_id: str
    changes: tuple[FileChange, ...] = ()
    rejected: tuple[str, ...] = ()  # why the fix is refused (symlink, binary, ...)

    @property
    def touched(self) -> bool:
        return bool(self.changes or self.rejected)

    @property
    def patch(self) -> str:
        return "".join(c.text if c.text.endswith("\n") else c.text + "\n" for c in self.changes)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for c in self.changes for p in c.paths))


@dataclass(frozen=True)
class Scoped:
    per_bug: dict[str, BugChanges]
    not_applied: tuple[NotApplied, ...]


_GIT_HEADER = re.compile(r"^diff --git ", re.MULTILINE)
_PLAIN_HEADER = re.compile(r"^--- .*\n\+\+\+ ", re.MULTILINE)


def _unquote(path: str) -> str:
    """git's C-style quoting of unusual paths ("a/caf\\303\\251.py")."""
    path = path.strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        path = raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return path


def _strip_prefix(path: str) -> str | None:
    path = _unquote(path.split("\t")[0])
    if path == "/dev/null":
        return None
    if path[:2] in ("a/", "b/"):
        path = path[2:]
    return path


def parse(patch_text: str) -> list[FileChange]:
    """The file sections of a git diff (or a plain unified diff). SubmissionError for text
    that holds no diff at all."""
    if not patch_text.strip():
        return []
    starts = [m.start() for m in _GIT_HEADER.finditer(patch_text)]
    if not starts:
        starts = [m.start() for m in _PLAIN_HEADER.finditer(patch_text)]
        if not starts:
            raise SubmissionError("the submission is not a diff: no 'diff --git' or '---/+++' file header in it")
    starts.append(len(patch_text))
    return [_section(patch_text[a:b]) for a, b in zip(starts, starts[1:])]


def _section(text: str) -> FileChange:
    old = new = None
    header_old = header_new = None
    binary = symlink = submodule = renamed = copied = False
    created = deleted = False
    for line in text.splitlines():
        if line.startswith("@@"):
            break  # hunks follow: the header is over
        if line.startswith("diff --git "):
            rest = line[len("diff --git "):]
            # "a/x b/x": for an unquoted, unrenamed path the halves are equal
            if rest.startswith('"'):
                end = rest.index('"', 1) + 1
                header_old, header_new = _strip_prefix(rest[:end]), _strip_prefix(rest[end + 1:])
            else:
                half = len(rest) // 2
                if rest[half] == " ":
                    header_old, header_new = _strip_prefix(rest[:half]), _strip_prefix(rest[half + 1:])
                else:
                    parts = rest.split(" b/", 1)
                    header_old = _strip_prefix(parts[0])
                    header_new = _strip_prefix("b/" + parts[1]) if len(parts) == 2 else header_old
        elif line.startswith("--- "):
            old = _strip_prefix(line[4:])
            if old is None:
                created = True
        elif line.startswith("+++ "):
            new = _strip_prefix(line[4:])
            if new is None:
                deleted = True
        elif line.startswith(("new file mode ", "deleted file mode ", "old mode ", "new mode ", "index ")):
            words = line.split()
            mode = words[-1] if not line.startswith("index ") or len(words) == 3 else ""
            if mode == SYMLINK_MODE:
                symlink = True
            if mode == GITLINK_MODE:
                submodule = True
            if line.startswith("new file mode "):
                created = True
            if line.startswith("deleted file mode "):
                deleted = True
        elif line.startswith("rename from "):
            renamed, header_old = True, _unquote(line[len("rename from "):])
        elif line.startswith("rename to "):
            header_new = _unquote(line[len("rename to "):])
        elif line.startswith("copy from "):
            copied, header_old = True, _unquote(line[len("copy from "):])
        elif line.startswith("copy to "):
            header_new = _unquote(line[len("copy to "):])
        elif line.startswith(("GIT binary patch", "Binary files ")):
            binary = True
    if "\nGIT binary patch" in text or "\nBinary files " in text:
        binary = True
    old_path = None if created else (old or header_old)
    new_path = None if deleted else (new or header_new)
    if old_path is None and new_path is None:
        old_path = header_old
    return FileChange(old_path, new_path, text, binary, symlink, submodule, renamed, copied)


def split(changes: list[FileChange], bugs: list[Bug]) -> Scoped:
    """Per bug, the changes inside its scope; every other change as NotApplied."""
    kept: dict[str, list[FileChange]] = {bug.id: [] for bug in bugs}
    rejected: dict[str, list[str]] = {bug.id: [] for bug in bugs}
    not_applied: list[NotApplied] = []
    for change in changes:
        never = [p for p in change.paths if NEVER_IN_SCOPE.search(p)]
        owners = [bug for bug in bugs if any(p in bug.scope for p in change.paths)]
        if not owners:
            if never:
                reason = "a test or test-runner file: never taken from a student"
            elif any(path_problem(p) for p in change.paths):
                reason = next(problem for p in change.paths if (problem := path_problem(p)))
            else:
                reason = "outside the scope of the bugs graded"
            not_applied.append(NotApplied(change.path, reason))
            continue
        problem = None
        if change.symlink:
            problem = f"{change.path} is changed into or from a symlink: a fix changes source code, never links"
        elif change.submodule:
            problem = f"{change.path} is changed into a git submodule"
        elif change.binary:
            problem = f"{change.path}: a binary change; a fix is a text diff of the source"
        elif change.renamed or change.copied:
            problem = (f"{change.old_path} is {change.kind} to {change.new_path}: a fix edits the files "
                       "in scope where they are")
        elif never:
            problem = f"{', '.join(never)} is a test or test-runner file"
        elif len(change.text) > MAX_FILE_DIFF:
            problem = (f"the change to {change.path} is {len(change.text) / 1e6:.1f} MB of diff, over the "
                       f"{MAX_FILE_DIFF / 1e6:.0f} MB a fix may be")
        for bug in owners:
            if problem:
                rejected[bug.id].append(problem)
            else:
                kept[bug.id].append(change)
    per_bug = {bug.id: BugChanges(bug.id, tuple(kept[bug.id]), tuple(rejected[bug.id])) for bug in bugs}
    return Scoped(per_bug, tuple(not_applied))
