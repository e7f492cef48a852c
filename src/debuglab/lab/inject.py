"""Planting bugs in a checkout: every patch is checked before anything is touched, and
all of them are applied or none."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from debuglab.catalog.model import Bug, patch_paths, path_problem
from debuglab.core import proc
from debuglab.core.errors import ProcError
from debuglab.lab import gitrepo, upstream
from debuglab.lab.errors import InjectError, StudentWorkError


@dataclass(frozen=True)
class InjectResult:
    applied: tuple[str, ...]  # bug ids planted by this run
    already: tuple[str, ...]  # bug ids that were in the checkout before
    saved_work: Path | None  # the student's work, saved before it was set aside


def _git_apply(cwd: Path, patch: Path, *flags: str) -> None:
    # GIT_CEILING_DIRECTORIES keeps git from treating an enclosing repository's root
    # as the place the patch's paths are relative to.
    proc.run(["git", "apply", *flags, patch], cwd=cwd, timeout=60,
             env={"GIT_CEILING_DIRECTORIES": str(Path(cwd).resolve().parent)})


def _why(exc: ProcError) -> str:
    """git's own words on which file and hunk failed."""
    lines = [line for line in exc.output.splitlines() if line.startswith("error:")]
    return "\n  ".join(lines) or exc.output.strip()


def is_applied(checkout: Path, patch: Path) -> bool:
    """True when the patch is already in the checkout (it reverses cleanly), False when it
    applies cleanly; InjectError naming the file and hunk when it does neither."""
    stage = _stage(checkout, [patch])
    try:
        try:
            _git_apply(stage, patch, "--check")
            return False
        except ProcError as forward:
            try:
                _git_apply(stage, patch, "--check", "--reverse")
                return True
            except ProcError:
                raise InjectError(
                    f"{patch} does not apply to {checkout}:\n  {_why(forward)}\n"
                    "the checkout holds other changes to those lines, or another upstream version"
                ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def apply_patches(checkout: Path, patches: list[Path], reverse: bool = False) -> None:
    """Apply the patches, in order, to copies of the files they touch; only when every one
    applies are the files moved into the checkout (each by rename, so a hard-linked copy
    of a tree is never written through)."""
    if not patches:
        return
    stage = _stage(checkout, patches)
    try:
        for patch in patches:
            try:
                _git_apply(stage, patch, *(["--reverse"] if reverse else []))
            except ProcError as exc:
                raise InjectError(
                    f"{patch} does not apply to {checkout} (nothing was changed):\n  {_why(exc)}"
                ) from None
        for rel in _touched(patches):
            staged, target = stage / rel, checkout / rel
            if staged.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
            elif target.exists():
                target.unlink()
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _touched(patches: list[Path]) -> list[str]:
    paths = []
    for patch in patches:
        for rel in patch_paths(patch.read_text()):
            if rel not in paths:
                paths.append(rel)
    return paths


def _stage(checkout: Path, patches: list[Path]) -> Path:
    """A scratch folder beside the checkout (same filesystem) holding copies of the files
    the patches touch."""
    stage = Path(tempfile.mkdtemp(prefix=".debuglab-stage-", dir=checkout.parent))
    for rel in _touched(patches):
        problem = path_problem(rel)
        if problem:
            shutil.rmtree(stage, ignore_errors=True)
            raise InjectError(f"a patch names {problem}")
        src = checkout / rel
        if src.is_file():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, stage / rel)
    return stage


def check_upstream(checkout: Path, bugs: list[Bug]) -> str:
    """The checkout's project name; InjectError if a bug is for another project or release."""
    found = upstream.checkout_version(checkout)
    if found is None:
        raise InjectError(
            f"{checkout}: no PKG-INFO, so its upstream release is unknown; "
            "debuglab plants bugs only in a checkout made from the pinned sdist"
        )
    name, version = found
    for bug in bugs:
        if bug.project != name:
            raise InjectError(f"bug '{bug.id}' is for {bug.project}, but {checkout} holds {name}")
        if bug.upstream != version:
            raise InjectError(
                f"bug '{bug.id}' is written against {name} {bug.upstream}, "
                f"but {checkout} holds {name} {version}"
            )
    return name


def inject(checkout: Path, bugs: list[Bug], *, force: bool = False, saved_dir: Path | None = None) -> InjectResult:
    """Plant `bugs` in `checkout`: all or none, idempotent, and never over a student's
    uncommitted work unless `force`, which saves that work as a patch first."""
    checkout = Path(checkout)
    if not checkout.is_dir():
        raise InjectError(f"{checkout}: no such checkout")
    project = check_upstream(checkout, bugs)
    saved = None
    if gitrepo.is_repo(checkout):
        changed = gitrepo.uncommitted(checkout)
        if changed and not force:
            shown = ", ".join(changed[:5]) + (" …" if len(changed) > 5 else "")
            raise StudentWorkError(
                f"{checkout} holds uncommitted work ({shown}); nothing was changed. "
                "Commit it, or run again with --force to save it as a patch and set it aside"
            )
        if changed:
            saved = gitrepo.save_work(checkout, saved_dir or checkout.parent / "saved-work", project)[-1]
            gitrepo.discard_work(checkout)
    already, todo = [], []
    for bug in bugs:
        (already if is_applied(checkout, bug.inject_patch) else todo).append(bug)
    apply_patches(checkout, [bug.inject_patch for bug in todo])
    return InjectResult(tuple(b.id for b in todo), tuple(b.id for b in already), saved)


_HIDDEN_INIT = "# debuglab's hidden tests; present only in grading and verification copies\n"


def install_hidden_tests(tree: Path, project: upstream.Project, bugs: list[Bug]) -> None:
    """Copy the bugs' hidden test modules into a grading or verification copy."""
    target = tree / project.hidden_tests_dir
    target.mkdir(parents=True, exist_ok=True)
    (target / "__init__.py").write_text(_HIDDEN_INIT)
    for bug in bugs:
        shutil.copyfile(bug.hidden_tests, target / f"{bug.hidden_module}.py")


