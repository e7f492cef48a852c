"""A student's submission: the diff of their checkout against the lab's baseline commit,
or a submitted .patch file; and a class's folder of them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from debuglab.core.errors import DebuglabError
from debuglab.grade.errors import SubmissionError
from debuglab.lab import gitrepo
from debuglab.lab.workspace import LAB_TOML, Workspace

MAX_SUBMISSION = 64 << 20  # bytes of diff read at all; the per-file limit in scope is far lower
PATCH_SUFFIXES = (".patch", ".diff")


@dataclass(frozen=True)
class Submission:
    student: str
    source: Path  # the checkout or the patch file
    patch: str  # the whole diff, as submitted
    project: str = "nova"
    lab_bugs: tuple[str, ...] | None = None  # the bugs of the student's baseline, when known
    problem: str | None = None  # why it could not be read (then every bug is an error)


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
    first commit (a lab's baseline is the only commit it starts with)."""
    checkout, ws = resolve_checkout(path, project)
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


def read(path: Path, student: str | None = None) -> Submission:
    """A .patch/.diff file, a lab folder or a checkout."""
    path = Path(path)
    if path.is_file():
        return from_patch_file(path, student)
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
    or a folder holding one patch). An entry that cannot be read is kept, with its problem."""
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
            if entry.is_dir() and not (entry / LAB_TOML).is_file() and not gitrepo.is_repo(entry):
                patches = sorted(p for p in entry.iterdir() if p.name.endswith(PATCH_SUFFIXES))
                if len(patches) != 1:
                    raise SubmissionError(f"{entry}: neither a lab, a git checkout nor a folder with one .patch")
                _own(patches[0], root)
                found.append(from_patch_file(patches[0], name))
            elif entry.is_dir():
                _own(resolve_checkout(entry)[0], root)
                found.append(read(entry, name))
            else:
                found.append(read(entry, name))
        except SubmissionError as exc:
            found.append(Submission(name, entry, "", problem=str(exc)))
    return found
