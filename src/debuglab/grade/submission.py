"""A student's submission: the diff of their checkout against the lab's baseline commit,
or a submitted .patch file; and a class's folder of them.

A lab holds a checkout per project (nova, python-novaclient): a submission is the change
of each (`Submission.parts`), and a .patch file's file sections go to the project whose
package they are in (`parts`), so every bug is graded against its own project's change.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from debuglab.core.errors import DebuglabError
from debuglab.grade.errors import SubmissionError
from debuglab.lab import gitrepo
from debuglab.lab.workspace import LAB_TOML, Workspace

MAX_SUBMISSION = 64 << 20  # bytes of diff read at all; the per-file limit in scope is far lower
PATCH_SUFFIXES = (".patch", ".diff")


COLLECTED = "submission.toml"  # what `debuglab collect` writes beside a student's <project>.patch files


@dataclass(frozen=True)
class Part:
    """A submission's change to one project."""

    project: str
    patch: str
    lab_bugs: tuple[str, ...] | None = None  # the bugs of that checkout's baseline, when known


@dataclass(frozen=True)
class Submission:
    student: str
    source: Path  # the checkout or the patch file
    patch: str  # the whole diff, as submitted
    project: str = "nova"  # the project of `patch`'s files outside every known package
    lab_bugs: tuple[str, ...] | None = None  # the bugs of the student's baseline, when known
    problem: str | None = None  # why it could not be read (then every bug is an error)
    parts: tuple[Part, ...] = ()  # the change per project, where each is known apart (a lab, a collected folder)


def parts(sub: Submission, packages: dict[str, str]) -> dict[str, Part]:
    """The submission's change per project (`packages`: project -> its top-level package).
    A lab's or a collected folder's parts are known; a single diff is split by file: a
    section under `novaclient/` is python-novaclient's, one under `nova/` nova's, and one
    in no package (tox.ini, conftest.py) goes with `sub.project` (where it is listed as
    not applied). Every project gets a part, empty when the submission does not touch
    it. SubmissionError when the text holds no diff at all."""
    from debuglab.grade import scope

    if sub.parts:
        found = {p.project: p for p in sub.parts}
        return {name: found.get(name, Part(name, "", None)) for name in dict.fromkeys([*found, *packages])}
    texts: dict[str, list[str]] = {name: [] for name in dict.fromkeys([sub.project, *packages])}
    owner = {package: name for name, package in packages.items()}
    for change in scope.parse(sub.patch):
        tops = [p.split("/", 1)[0] for p in change.paths if "/" in p]
        project = next((owner[t] for t in tops if t in owner), sub.project)
        texts[project].append(change.text if change.text.endswith("\n") else change.text + "\n")
    return {name: Part(name, "".join(chunks), sub.lab_bugs if name == sub.project else None)
            for name, chunks in texts.items()}


def _student_name(path: Path) -> str:
    name = path.name
    for suffix in PATCH_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return re.sub(r"[^\w.@+-]+", "_", name) or "student"


def from_patch_file(path: Path, student: str | None = None, project: str = "nova") -> Submission:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SUBMISSION:
            raise SubmissionError(f"{path}: {size / 1e6:.0f} MB, over the {MAX_SUBMISSION >> 20} MB a submission may be")
        data = path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{path}: cannot read the patch: {exc}") from None
    return Submission(student or _student_name(path), path, data.decode("utf-8", errors="replace"), project)


def resolve_checkout(path: Path, project: str = "nova") -> tuple[Path, Workspace | None]:
    """A lab folder or a checkout → (the checkout, its workspace if any)."""
    path = Path(path)
    if (path / LAB_TOML).is_file():
        ws = Workspace(path.resolve())
        return ws.checkout(project), ws
    return path, Workspace.containing(path)


def from_checkout(path: Path, student: str | None = None, project: str = "nova") -> Submission:
    """The checkout's change against its baseline: the commit lab.toml records, else its
    first commit (a lab's baseline is the only commit it starts with). A lab folder is
    the change of each of its checkouts; a checkout inside a lab is that lab's project's."""
    path = Path(path)
    if (path / LAB_TOML).is_file():
        return _from_lab(Workspace(path.resolve()), student, project)
    checkout, ws = resolve_checkout(path, project)
    if ws is not None:  # lab/stack/python-novaclient is python-novaclient's, whatever the caller guessed
        project = next((name for name in _lab_projects(ws) if ws.checkout(name).resolve() == checkout.resolve()),
                       project)
    return _checkout_submission(checkout, ws, student, project)


def _lab_projects(ws: Workspace) -> list[str]:
    try:
        return list(ws.info.get("projects", {}))
    except DebuglabError:
        return []


def _from_lab(ws: Workspace, student: str | None, project: str) -> Submission:
    """Every checkout of the lab: one part per project that lab.toml records."""
    names = _lab_projects(ws) or [project]
    found = [_checkout_submission(ws.checkout(name), ws, student, name)
             for name in names if name == project or ws.checkout(name).is_dir()]
    main = next((s for s in found if s.project == project), found[0])
    return Submission(main.student, ws.root, "".join(s.patch for s in found), project, main.lab_bugs,
                      parts=tuple(Part(s.project, s.patch, s.lab_bugs) for s in found))


def _checkout_submission(checkout: Path, ws: Workspace | None, student: str | None, project: str) -> Submission:
    if not checkout.is_dir():
        raise SubmissionError(f"{checkout}: no such checkout")
    if not gitrepo.is_repo(checkout):
        raise SubmissionError(
            f"{checkout} is not a git repository, so its change against the lab's baseline is "
            "unknown; grade a lab checkout, or submit the change as a .patch file"
        )
    lab_bugs = None
    base = None
    if ws is not None and ws.checkout(project).resolve() == checkout.resolve():
        try:
            entry = ws.info["projects"][project]
            base, lab_bugs = entry["baseline_commit"], tuple(entry.get("bugs", ()))
        except (KeyError, DebuglabError):
            base = None
    try:
        if base is None:
            base = gitrepo.git(checkout, "rev-list", "--max-parents=0", "HEAD").split()[0]
        patch = gitrepo.work_patch(checkout, base)
    except (DebuglabError, IndexError) as exc:
        raise SubmissionError(f"{checkout}: cannot diff against the baseline: {exc}") from None
    if len(patch) > MAX_SUBMISSION:
        raise SubmissionError(f"{checkout}: the change is {len(patch) / 1e6:.0f} MB, over the "
                              f"{MAX_SUBMISSION >> 20} MB a submission may be")
    name = student or (ws.root.name if ws is not None else checkout.name)
    return Submission(name, checkout, patch, project, lab_bugs)


def from_collected(folder: Path, student: str | None = None) -> Submission:
    """What `debuglab collect` wrote for a student: submission.toml naming a <project>.patch
    per project (`[projects.<name>] patch = "..."`)."""
    folder = Path(folder)
    try:
        record = tomllib.loads((folder / COLLECTED).read_text())
        entries = record["projects"]
        files = {name: folder / entry["patch"] for name, entry in entries.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmissionError(f"{folder / COLLECTED}: unreadable ({exc})") from None
    name = student or _student_name(folder)
    found = []
    for project, patch_file in files.items():
        if Path(patch_file.name) != Path(entries[project]["patch"]):
            raise SubmissionError(f"{folder / COLLECTED}: {entries[project]['patch']!r} is not a file of the folder")
        if patch_file.exists():
            _own(patch_file, folder.resolve())
            found.append(Part(project, from_patch_file(patch_file, name).patch))
    if not found:
        raise SubmissionError(f"{folder}: none of the patches {COLLECTED} names is there")
    main = next((p for p in found if p.project == "nova"), found[0])
    return Submission(name, folder, "".join(p.patch for p in found), main.project, parts=tuple(found))


def read(path: Path, student: str | None = None) -> Submission:
    """A .patch/.diff file, a lab folder, a checkout, or a folder `debuglab collect` wrote."""
    path = Path(path)
    if path.is_file():
        return from_patch_file(path, student)
    if (path / COLLECTED).is_file() and not (path / LAB_TOML).is_file() and not gitrepo.is_repo(path):
        return from_collected(path, student)
    return from_checkout(path, student)


def _own(path: Path, root: Path) -> None:
    """A class's submission is the student's own: no symbolic link (to a classmate's patch,
    or to a lab elsewhere), and nothing it names lies outside the submissions folder."""
    if path.is_symlink():
        raise SubmissionError(f"{path}: a symbolic link (to {os.readlink(path)}), not a submission of its own: "
                              "copy the student's file or folder into the submissions folder instead")
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise SubmissionError(f"{path}: leads to {resolved}, outside the submissions folder {root}: "
                              "copy the student's work into it instead")


def gather(folder: Path) -> list[Submission]:
    """A class: one entry per student, a .patch/.diff file or a folder (a lab, a checkout,
    a folder `debuglab collect` wrote, or a folder holding one patch). An entry that
    cannot be read is kept, with its problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: no such folder of submissions")
    found = []
    root = folder.resolve()
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and not entry.is_symlink() and not entry.name.endswith(PATCH_SUFFIXES):
            continue
        name = _student_name(entry)
        try:
            _own(entry, root)
            if entry.is_dir() and (entry / COLLECTED).is_file() and not (entry / LAB_TOML).is_file() \
                    and not gitrepo.is_repo(entry):
                found.append(from_collected(entry, name))
            elif entry.is_dir() and not (entry / LAB_TOML).is_file() and not gitrepo.is_repo(entry):
                patches = sorted(p for p in entry.iterdir() if p.name.endswith(PATCH_SUFFIXES))
                if len(patches) != 1:
                    raise SubmissionError(f"{entry}: neither a lab, a git checkout nor a folder with one .patch")
                _own(patches[0], root)
                found.append(from_patch_file(patches[0], name))
            elif entry.is_dir():
                if (entry / LAB_TOML).is_file():  # each of the lab's checkouts is graded: each is checked
                    ws = Workspace(entry.resolve())
                    for project in _lab_projects(ws) or ["nova"]:
                        if os.path.lexists(entry / "stack" / project) or project == "nova":
                            _own(entry / "stack" / project, root)
                _own(resolve_checkout(entry)[0], root)
                found.append(read(entry, name))
            else:
                found.append(read(entry, name))
        except SubmissionError as exc:
            found.append(Submission(name, entry, "", problem=str(exc)))
    return found
