"""The kit's side on a lab host: `python3 -m debuglab.provision.agent OP 'JSON'`.

Runs as the SSH user (never as root) with the host's Python 3.11 and the uploaded kit on
PYTHONPATH; uses only the standard library and the kit's stdlib-only modules (catalog,
inject, gitrepo, upstream, proc). Prints one JSON object on its last line: the answer,
or {"error": "..."}.

DevStack hosts keep their state in `<stack_dir>/.debuglab/`:
  original/<project>   the DevStack checkout as it was, moved aside untouched (the
                       student's repository borrows its objects: keep it)
  state.json           per project: bugs, the patches' hash, the baseline commit
  saved-work/          students' work saved as patches before anything replaced it
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

from debuglab import gitrepo, inject, proc
from debuglab.catalog import Catalog
from debuglab.errors import DebuglabError


def _path(text: str) -> Path:
    return Path(os.path.expanduser(text))


def _meta(stack: Path) -> Path:
    return stack / ".debuglab"


def _state(stack: Path) -> dict:
    path = _meta(stack) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {"projects": {}}


def _write_state(stack: Path, state: dict) -> None:
    path = _meta(stack) / "state.json"
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def _has_commit(checkout: Path, commit: str) -> bool:
    try:
        gitrepo.git(checkout, "cat-file", "-e", commit + "^{commit}")
        return True
    except proc.ProcError:
        return False


def _copy_tree(source: Path, dest: Path) -> None:
    """A full copy (never hard links: a student's in-place edit must not reach the
    original), without the original's .git; `cp -a` is several times faster than Python."""
    dest.mkdir(parents=True)
    entries = [source / name for name in sorted(os.listdir(source)) if name != ".git"]
    if entries:
        proc.run(["cp", "-a", "--reflink=auto", "--", *entries, dest], timeout=600)


def _init_repo(checkout: Path, original: Path) -> None:
    """The student's repository, borrowing the unchanged files' objects from the original
    checkout's object store (read only, through git's alternates) so that committing the
    baseline writes only the objects the bugs changed."""
    gitrepo.git(checkout, "init", "--quiet", "--initial-branch=main")
    exclude = checkout / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("# debuglab: built files are never part of a change\n" + "\n".join(gitrepo.EXCLUDES) + "\n")
    objects = original / ".git" / "objects"
    if objects.is_dir():
        (checkout / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (checkout / ".git" / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")


def op_baseline(a: dict) -> dict:
    """Re-baseline each DevStack checkout as the student's one-commit git baseline with
    the bugs planted; the original checkout is moved aside untouched the first time.
    Nothing changes when bugs, patches and baseline are as the last run left them."""
    stack = _path(a["stack_dir"])
    meta = _meta(stack)
    meta.mkdir(parents=True, exist_ok=True)
    state = _state(stack)
    catalog = Catalog.load(_path(a["kit_dir"]) / "bugs")
    out = {}
    for project, ids in a["projects"].items():
        bugs = catalog.select(ids) if ids else []
        digest = hashlib.sha256(b"".join(b.inject_patch.read_bytes() for b in bugs)).hexdigest()
        live, original = stack / project, meta / "original" / project
        entry = state["projects"].get(project)
        if (entry and entry["bugs"] == sorted(ids) and entry["patches_sha256"] == digest
                and gitrepo.is_repo(live) and original.is_dir()
                and _has_commit(live, entry["baseline_commit"])):
            out[project] = {"changed": False, "baseline_commit": entry["baseline_commit"], "saved_work": None}
            continue
        moved_now = False
        if not original.is_dir():  # the first run: DevStack's checkout goes aside, untouched
            if not live.is_dir():
                raise DebuglabError(f"no {project} checkout at {live}")
            original.parent.mkdir(parents=True, exist_ok=True)
            live.rename(original)
            moved_now = True
        build = meta / f"{project}.building"
        try:
            shutil.rmtree(build, ignore_errors=True)
            _copy_tree(original, build)
            _init_repo(build, original)
            inject.apply_patches(build, [b.inject_patch for b in bugs])
            commit = gitrepo.commit_baseline(build)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            if moved_now:
                original.rename(live)
            raise
        saved = None
        if entry and gitrepo.is_repo(live):  # a baseline of ours, maybe with the student's work
            patch = gitrepo.work_patch(live, entry["baseline_commit"])
            if patch.strip():
                saved = str(gitrepo.write_patch(meta / "saved-work", project, patch))
        if live.exists():
            old = meta / f"{project}.old"
            shutil.rmtree(old, ignore_errors=True)
            live.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        build.rename(live)
        state["projects"][project] = {"bugs": sorted(ids), "patches_sha256": digest, "baseline_commit": commit,
                                      "original": str(original)}
        _write_state(stack, state)
        out[project] = {"changed": True, "baseline_commit": commit, "saved_work": saved}
    return {"projects": out}


def _checkouts(a: dict) -> dict[str, tuple[Path, str, Path]]:
    """project -> (checkout, baseline commit, saved-work folder) on this host."""
    if a["profile"] == "devstack":
        stack = _path(a["dir"])
        projects = _state(stack)["projects"]
        if not projects:
            raise DebuglabError(f"{stack} was never provisioned by debuglab (no .debuglab/state.json)")
        return {p: (stack / p, e["baseline_commit"], _meta(stack) / "saved-work") for p, e in projects.items()}
    lab = _path(a["dir"])
    try:
        info = tomllib.loads((lab / "lab.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DebuglabError(f"no lab at {lab}: {exc}") from exc
    return {p: (lab / e["path"], e["baseline_commit"], lab / "saved-work") for p, e in info["projects"].items()}


def op_collect(a: dict) -> dict:
    """Each checkout's work against its baseline (commits, edits, new files), read
    through a scratch index so the student's own index is never touched."""
    out = {}
    for project, (checkout, base, _) in _checkouts(a).items():
        out[project] = {"baseline_commit": base, "patch": gitrepo.work_patch(checkout, base)}
    return {"projects": out}


def op_reset(a: dict) -> dict:
    """Save the student's work as a patch, then put the checkout (or only `paths`) back
    to the baseline. Ignored files (built ones) stay."""
    checkouts = _checkouts(a)
    project = a["project"]
    if project not in checkouts:
        raise DebuglabError(f"this host has no {project} checkout provisioned by debuglab")
    checkout, base, saved_dir = checkouts[project]
    patch = gitrepo.work_patch(checkout, base)
    saved = str(gitrepo.write_patch(saved_dir, f"{project}-before-reset", patch)) if patch.strip() else None
    paths = a.get("paths")
    if patch.strip():
        if paths:
            tracked = [p for p in paths if gitrepo.git(checkout, "ls-tree", "--name-only", base, "--", p).strip()]
            if tracked:
                gitrepo.git(checkout, "checkout", base, "--", *tracked)
            gitrepo.git(checkout, "clean", "-fdq", "--", *paths)
        else:
            gitrepo.git(checkout, "reset", "--quiet", "--hard", base)
            gitrepo.git(checkout, "clean", "-fdq")
    return {"saved_work": saved, "patch": patch, "checkout": str(checkout), "changed": bool(patch.strip())}


def op_tools(a: dict) -> dict:
    """Install the debugger tools into DevStack's Python unless they are there already:
    from the kit's wheelhouse offline, else from PyPI with the lock's hashes."""
    python = _path(a["venv_python"]) if "/" in a["venv_python"] else a["venv_python"]
    kit = _path(a["kit_dir"])
    reqs = kit / "requirements" / "debug-tools.txt"
    wanted = {}
    for line in reqs.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("--"):
            name, _, version = line.split()[0].partition("==")
            wanted[name] = version
    probe = ("import importlib.metadata as m, json, sys\nout = {}\nfor n in sys.argv[1:]:\n"
             "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))")
    try:
        have = json.loads(proc.run([python, "-c", probe, *wanted], timeout=60).output.strip().splitlines()[-1])
    except proc.ProcError as exc:
        raise DebuglabError(f"DevStack's Python {python} does not run: {exc}") from exc
    missing = [f"{n}=={v}" for n, v in wanted.items() if have.get(n) != v]
    if not missing:
        return {"changed": False, "versions": have}
    try:
        proc.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", "--no-index",
                  "--find-links", kit / "wheels", *missing], timeout=600)
        how = "wheelhouse"
    except proc.ProcError:
        proc.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
                  "-r", reqs], timeout=900)
        how = "PyPI"
    return {"changed": True, "installed": missing, "from": how}


OPS = {"baseline": op_baseline, "collect": op_collect, "reset": op_reset, "tools": op_tools}


def main(argv: list[str]) -> int:
    try:
        answer = OPS[argv[0]](json.loads(argv[1]))
        code = 0
    except DebuglabError as exc:
        answer, code = {"error": str(exc)}, 1
    except Exception as exc:  # an answer the controller can show, not a traceback on a VM
        answer, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
