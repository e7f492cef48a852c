"""The student's checkout as a git repository: one baseline commit, their diff against it,
and saving their work as a patch before anything touches it."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from debuglab.core import proc
from debuglab.core.files import write_atomic

# What git never shows a student as "their change": built and cached files.
EXCLUDES = ("__pycache__/", "*.py[cod]", "*.egg-info/", ".stestr/", "build/", ".tmp/", ".eggs/")
# A fixed identity and date make the baseline commit the same for every student who
# gets the same code, and say nothing about when or by whom the bugs were planted.
BASELINE_ENV = {
    "GIT_AUTHOR_NAME": "debuglab", "GIT_AUTHOR_EMAIL": "debuglab@localhost",
    "GIT_COMMITTER_NAME": "debuglab", "GIT_COMMITTER_EMAIL": "debuglab@localhost",
    "GIT_AUTHOR_DATE": "2016-10-25T12:00:00+0000", "GIT_COMMITTER_DATE": "2016-10-25T12:00:00+0000",
}
BASELINE_MESSAGE = "Lab baseline\n\nThe code as the lab starts. `git diff` shows your own changes.\n"


def git(checkout: Path, *args: str, env: dict | None = None, timeout: float = 120) -> str:
    return proc.run(["git", "-C", checkout, *args], env={**(env or {}), **_safe_env()},
                    timeout=timeout).output


def _safe_env() -> dict:
    # checkouts unpacked or copied by root, or by another user on a lab VM
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


def is_repo(checkout: Path) -> bool:
    return (checkout / ".git").exists()


def commit_baseline(checkout: Path) -> str:
    """Make the checkout's first and only commit hold its current files; return its id.
    An existing history is replaced (a re-baseline after injecting more bugs)."""
    if not is_repo(checkout):
        git(checkout, "init", "--quiet", "--initial-branch=main")
        exclude = checkout / ".git" / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        exclude.write_text("# debuglab: built files are never part of a change\n" + "\n".join(EXCLUDES) + "\n")
    git(checkout, "add", "--all")
    tree = git(checkout, "write-tree").strip()
    commit = proc.run(
        ["git", "-C", checkout, "commit-tree", tree], input=BASELINE_MESSAGE,
        env={**BASELINE_ENV, **_safe_env()},
    ).output.strip()
    git(checkout, "update-ref", "HEAD", commit)
    git(checkout, "reflog", "expire", "--expire=now", "--all")
    return commit


def head(checkout: Path) -> str:
    return git(checkout, "rev-parse", "HEAD").strip()


def uncommitted(checkout: Path) -> list[str]:
    """Paths that differ from HEAD, untracked ones included (ignored ones not)."""
    out = git(checkout, "status", "--porcelain", "--untracked-files=all")
    return [line[3:] for line in out.splitlines() if line.strip()]


def work_patch(checkout: Path, base: str = "HEAD") -> str:
    """The working tree against `base` as a binary-safe patch, new files included,
    without touching the student's index."""
    return _diff_of_work(checkout, base, "--binary")


def change_summary(checkout: Path, base: str) -> str:
    """The student's change against `base` in one line, `git diff --stat`'s last line with the
    untracked files counted in ("3 files changed, 10 insertions(+), 2 deletions(-)"); "none"."""
    lines = _diff_of_work(checkout, base, "--stat").strip().splitlines()
    return lines[-1].strip() if lines else "none"


def _diff_of_work(checkout: Path, base: str, *options: str) -> str:
    """`git diff` of the whole working tree (untracked files included) against `base`,
    through an index of its own: the student's index is never touched."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(checkout, "read-tree", base, env=env)
        git(checkout, "add", "--all", env=env)
        return git(checkout, "diff", "--cached", *options, base, env=env)


def save_work(checkout: Path, dest_dir: Path, label: str, base: str = "HEAD") -> list[Path]:
    """Save everything the student made since `base` before anything touches it: their
    commits (save_commits) and their uncommitted and untracked changes against HEAD as
    `dest_dir/<time>-<label>.patch`. Returns what was written ([] when there is nothing)."""
    saved = save_commits(checkout, dest_dir, label, base)
    if uncommitted(checkout):
        saved.append(write_patch(dest_dir, label, work_patch(checkout)))
    return saved


def save_commits(checkout: Path, dest_dir: Path, label: str, base: str) -> list[Path]:
    """The commits made on top of `base`, as `git format-patch` files in
    `dest_dir/<time>-<label>-commits/` (`git am` brings them back); when HEAD no longer
    descends from `base` (an amended or rebased baseline), the whole committed change
    since `base` as `<time>-<label>-since-baseline.patch`."""
    head_commit = head(checkout)
    if head_commit == git(checkout, "rev-parse", base).strip():
        return []
    descends = proc.run(["git", "-C", checkout, "merge-base", "--is-ancestor", base, "HEAD"],
                        env=_safe_env(), check=False).returncode == 0
    if not descends:
        patch = git(checkout, "diff", "--binary", base, "HEAD")
        return [write_patch(dest_dir, f"{label}-since-baseline", patch)] if patch.strip() else []
    folder = _fresh(dest_dir, label + "-commits", "")
    tmp = folder.with_name(folder.name + ".partial")
    git(checkout, "format-patch", "--quiet", "--binary", "-o", str(tmp), f"{base}..HEAD")
    tmp.rename(folder)
    return [folder]


SAVED_STASH_REFS = "refs/debuglab-saved-stash"  # a moment's refs: a bundle carries refs, a stash entry has none


def save_refs(checkout: Path, dest_dir: Path, label: str, base: str) -> list[Path]:
    """Before a checkout is deleted: every branch, tag and stash entry whose commits are
    not in `base`, as one `git bundle` (`<time>-<label>-refs.bundle`), each stash entry
    also as a patch (`<time>-<label>-stash-N.patch`), and their names with what each
    pointed at (`<time>-<label>-refs.txt`). [] when every ref is in `base`."""
    refs = [line.split(" ", 1) for line in git(checkout, "for-each-ref", "--format=%(refname) %(objectname)",
                                                "refs/heads", "refs/tags").splitlines() if line.strip()]
    stashes = [line.split(" ", 1) for line in git(checkout, "stash", "list", "--format=%H %gs").splitlines()
               if line.strip()]
    ahead = [(name, sha) for name, sha in refs if not _contains(checkout, base, sha)]
    if not ahead and not stashes:
        return []
    names = [f"{name} {sha}" for name, sha in refs] + [f"stash@{{{n}}} {sha} {message}"
                                                       for n, (sha, message) in enumerate(stashes)]
    saved = [write_patch_named(dest_dir, f"{label}-refs", ".txt", "\n".join(names) + "\n")]
    for n, (sha, _) in enumerate(stashes):
        patch = git(checkout, "stash", "show", "--patch", "--binary", "--include-untracked", f"stash@{{{n}}}")
        saved.append(write_patch(dest_dir, f"{label}-stash-{n}", patch))
    temporary = [f"{SAVED_STASH_REFS}/{n}" for n in range(len(stashes))]
    for ref, (sha, _) in zip(temporary, stashes):
        git(checkout, "update-ref", ref, sha)
    try:
        bundle = _fresh(dest_dir, f"{label}-refs", ".bundle")
        tmp = bundle.with_name(f".{bundle.name}.partial")
        git(checkout, "bundle", "create", "--quiet", str(tmp), *[name for name, _ in ahead], *temporary, f"^{base}")
        tmp.replace(bundle)
        saved.insert(1, bundle)
    finally:
        for ref in temporary:
            git(checkout, "update-ref", "-d", ref)
    return saved


def _contains(checkout: Path, base: str, sha: str) -> bool:
    """Is commit `sha` in `base`'s history?"""
    return proc.run(["git", "-C", checkout, "merge-base", "--is-ancestor", sha, base],
                    env=_safe_env(), check=False).returncode == 0


def write_patch_named(dest_dir: Path, label: str, suffix: str, text: str) -> Path:
    """Store text as `dest_dir/<time>-<label><suffix>`, never over an earlier file."""
    dest = _fresh(dest_dir, label, suffix)
    write_atomic(dest, text)
    return dest


def _fresh(dest_dir: Path, label: str, suffix: str) -> Path:
    """`dest_dir/<time>-<label><suffix>`, never an existing name."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = dest_dir / f"{stamp}-{label}{suffix}"
    n = 1
    while dest.exists():
        n += 1
        dest = dest_dir / f"{stamp}-{label}-{n}{suffix}"
    return dest


def write_patch(dest_dir: Path, label: str, patch: str) -> Path:
    """Store a patch as `dest_dir/<time>-<label>.patch`, never over an earlier one."""
    return write_patch_named(dest_dir, label, ".patch", patch)


def discard_work(checkout: Path) -> None:
    """Back to HEAD. Call only after save_work."""
    git(checkout, "reset", "--quiet", "--hard", "HEAD")
    git(checkout, "clean", "--quiet", "-fd")
