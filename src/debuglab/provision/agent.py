"""The kit's side on a lab host: `python3 -m debuglab.provision.agent OP 'JSON'`.

Runs as the SSH user (never as root) with the host's Python 3.11 and the uploaded kit on
PYTHONPATH; uses only the standard library and the kit's stdlib-only modules (catalog,
inject, gitrepo, upstream, proc). Prints one JSON object on its last line: the answer,
or {"error": "..."}.

DevStack hosts keep their state in `<stack_dir>/.debuglab/`:
  original/<project>.git  DevStack's repository (the checkout's .git) as it was, moved
                       aside untouched; the files stay in place (the student's repository
                       borrows its objects: keep it)
  <project>.planted.patch  the bugs the live baseline holds (to take them out again)
  state.json           per project: bugs, the patches' hash, the baseline commit
  saved-work/          students' work saved as patches before anything replaced it
  site.toml, jupyter/  what the host's JupyterLab and its DevStack kernel use (debuglab.notebooks.devstack)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

from debuglab.catalog.model import Catalog
from debuglab.core import proc
from debuglab.core.errors import DebuglabError
from debuglab.core.files import write_atomic
from debuglab.lab import gitrepo, inject
from debuglab.notebooks import student


def _path(text: str) -> Path:
    return Path(os.path.expanduser(text))


def _meta(stack: Path) -> Path:
    return stack / ".debuglab"


def _state(stack: Path) -> dict:
    path = _meta(stack) / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {"projects": {}}


def _write_state(stack: Path, state: dict) -> None:
    path = _meta(stack) / "state.json"
    write_atomic(path, json.dumps(state, indent=2, sort_keys=True))


def _interpreter(text: str) -> Path:
    """A python given as a path (~ expanded) or as a command name on PATH."""
    return _path(text) if "/" in text else Path(shutil.which(text) or text)


def _has_commit(checkout: Path, commit: str) -> bool:
    try:
        gitrepo.git(checkout, "cat-file", "-e", commit + "^{commit}")
        return True
    except proc.ProcError:
        return False


def _init_repo(checkout: Path, original: Path) -> None:
    """The student's repository in the checkout, borrowing the files' objects from
    DevStack's repository set aside (read only, through git's alternates), so that
    committing the baseline writes only the objects the bugs changed. A copy of that
    repository's index comes too: its stat data says which files are as DevStack's
    clone wrote them, so `git add` hashes only the others (the planted bugs) instead of
    all ~9,700 files (1.4 s of CPU on a nova checkout)."""
    gitrepo.git(checkout, "init", "--quiet", "--initial-branch=main")
    exclude = checkout / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("# debuglab: built files are never part of a change\n" + "\n".join(gitrepo.EXCLUDES) + "\n")
    objects = original / "objects"
    if objects.is_dir():
        (checkout / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (checkout / ".git" / "objects" / "info" / "alternates").write_text(f"{objects.resolve()}\n")
        index = original / "index"
        # a split index keeps its entries in a second file: start from no index then
        if index.is_file() and not any(original.glob("sharedindex.*")):
            shutil.copyfile(index, checkout / ".git" / "index")


def op_baseline(a: dict) -> dict:
    """Re-baseline each DevStack checkout, in place, as the student's one-commit git
    baseline with the bugs planted. The first time, DevStack's repository (its `.git`)
    is moved aside untouched; the files stay where DevStack installed them (its editable
    install, egg-info and generated files included), so nothing is copied. A new bug set
    saves the student's work, goes back to the baseline, takes the old bugs out (the
    patch that planted them is kept beside the state) and plants the new ones. Nothing
    changes when bugs, patches and baseline are as the last run left them."""
    stack = _path(a["stack_dir"])
    meta = _meta(stack)
    meta.mkdir(parents=True, exist_ok=True)
    state = _state(stack)
    catalog = Catalog.load(_path(a["kit_dir"]) / "bugs")
    out = {}
    for project, ids in a["projects"].items():
        bugs = catalog.select(ids) if ids else []
        planted = b"".join(b.inject_patch.read_bytes() for b in bugs)
        digest = hashlib.sha256(planted).hexdigest()
        live, original = stack / project, meta / "original" / f"{project}.git"
        applied = meta / f"{project}.planted.patch"  # what the live baseline holds, to take it out again
        entry = state["projects"].get(project)
        ours = bool(entry) and gitrepo.is_repo(live) and original.is_dir() and _has_commit(live, entry["baseline_commit"])
        if ours and entry["bugs"] == sorted(ids) and entry["patches_sha256"] == digest:
            out[project] = {"changed": False, "baseline_commit": entry["baseline_commit"], "saved_work": None}
            continue
        if not live.is_dir():
            if project != "nova":  # DevStack installs the clients from PyPI unless LIBS_FROM_GIT names them
                out[project] = {"changed": False, "baseline_commit": None, "saved_work": None,
                                "skipped": f"{len(ids)} {project} bug(s) left out: no checkout at {live} "
                                           f"(DevStack clones it with LIBS_FROM_GIT={project} in local.conf)"}
                continue
            raise DebuglabError(f"no {project} checkout at {live}")
        saved, moved_now = None, False
        if ours:  # our baseline, maybe with the student's work: save it, then back to pristine
            patch = gitrepo.work_patch(live, entry["baseline_commit"])
            gitrepo.save_commits(live, meta / "saved-work", project, entry["baseline_commit"])  # history too
            if patch.strip():
                saved = str(gitrepo.write_patch(meta / "saved-work", project, patch))
            gitrepo.git(live, "reset", "--quiet", "--hard", entry["baseline_commit"])
            gitrepo.git(live, "clean", "-fdq")  # the student's new files (saved); ignored build files stay
            if applied.is_file() and applied.stat().st_size:
                inject.apply_patches(live, [applied], reverse=True)
        else:
            if original.is_dir():  # an earlier run stopped half way: its repository is ours
                shutil.rmtree(live / ".git", ignore_errors=True)
            elif (live / ".git").is_dir():  # the first run: DevStack's repository goes aside, untouched
                original.parent.mkdir(parents=True, exist_ok=True)
                (live / ".git").rename(original)
                moved_now = True
            else:
                raise DebuglabError(f"{live} is not a git checkout (DevStack clones one): nothing to keep aside")
            _init_repo(live, original)
        try:
            inject.apply_patches(live, [b.inject_patch for b in bugs])
            write_atomic(applied, planted)
            try:
                commit = gitrepo.commit_baseline(live)
            except proc.ProcError:  # an index the borrowed objects do not match: hash every file
                (live / ".git" / "index").unlink(missing_ok=True)
                commit = gitrepo.commit_baseline(live)
        except BaseException:
            if moved_now:  # leave DevStack's checkout as it was found
                applied.unlink(missing_ok=True)
                shutil.rmtree(live / ".git", ignore_errors=True)
                original.rename(live / ".git")
            raise
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
    notebooks = student.edited(_path(a["dir"]) / student.FOLDER) if a["profile"] == "lab" else {}
    return {"projects": out, "notebooks": notebooks}


def op_reset(a: dict) -> dict:
    """Save the student's work as a patch, then put the checkout (or only `paths`) back
    to the baseline. Ignored files (built ones) stay."""
    checkouts = _checkouts(a)
    project = a["project"]
    if project not in checkouts:
        raise DebuglabError(f"this host has no {project} checkout provisioned by debuglab")
    checkout, base, saved_dir = checkouts[project]
    patch = gitrepo.work_patch(checkout, base)
    gitrepo.save_commits(checkout, saved_dir, f"{project}-before-reset", base)  # their history, for `git am`
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
    python = _interpreter(a["venv_python"])
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
                  "--no-deps", "--find-links", kit / "wheels", *missing], timeout=600)
        how = "wheelhouse"
    except proc.ProcError:
        proc.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes",
                  "-r", reqs], timeout=900)
        how = "PyPI"
    return {"changed": True, "installed": missing, "from": how}


def _uv(wheelhouse: Path) -> Path:
    """uv's binary, taken out of the wheelhouse's uv wheel (no index, no pip needed)."""
    import zipfile

    wheels = sorted(wheelhouse.glob("uv-*.whl"))
    if not wheels:
        raise DebuglabError(f"no uv wheel in {wheelhouse}: upload the wheelhouse again")
    binary = wheelhouse / ".uv" / wheels[-1].name / "uv"
    if not binary.is_file():
        with zipfile.ZipFile(wheels[-1]) as zf:
            member = next((n for n in zf.namelist() if n.endswith(".data/scripts/uv")), None)
            if member is None:
                raise DebuglabError(f"{wheels[-1]} holds no uv binary")
            binary.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(binary, zf.read(member), mode=0o755)
    return binary


def op_kit_venv(a: dict) -> dict:
    """debuglab itself in a venv of its own on the host (editable from the uploaded kit,
    which is swapped in place, so a new kit needs no reinstall), with the packages it
    needs installed offline from the uploaded wheelhouse. The upstream sdists go into the
    host's debuglab cache, where `lab create` looks for them. Nothing changes when the
    venv was built from the same pins, Python and pyproject.toml."""
    from debuglab.core.kit import cache_dir

    venv, kit, wheelhouse = _path(a["venv"]), _path(a["kit_dir"]), _path(a["wheelhouse"])
    reqs = wheelhouse / "kit-venv.txt"
    if not reqs.is_file():
        raise DebuglabError(f"no wheelhouse at {wheelhouse} (kit-venv.txt missing): upload it again")
    cache = cache_dir()
    sdists = cache / "sdists"
    for sdist in sorted((wheelhouse / "sdists").glob("*")):
        if not (sdists / sdist.name).is_file():
            sdists.mkdir(parents=True, exist_ok=True)
            tmp = sdists / f".{sdist.name}.partial"
            shutil.copyfile(sdist, tmp)
            tmp.replace(sdists / sdist.name)
    wanted = hashlib.sha256(b"\0".join([reqs.read_bytes(), (kit / "pyproject.toml").read_bytes(),
                                        sys.version.encode(), str(kit).encode()])).hexdigest()
    marker = venv / ".debuglab-venv"
    debuglab = venv / "bin" / "debuglab"
    if marker.is_file() and marker.read_text().strip() == wanted and debuglab.is_file():
        return {"changed": False, "debuglab": str(debuglab)}
    uv = _uv(wheelhouse)
    env = {"UV_CACHE_DIR": str(cache / "uv"), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1",
           "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wheelhouse), "UV_NO_INDEX": "1"}
    marker.unlink(missing_ok=True)
    if not (venv / "bin" / "python").exists():
        proc.run([uv, "venv", "--quiet", "--python", sys.executable, venv], env=env, timeout=300)
    python = venv / "bin" / "python"
    proc.run([uv, "pip", "install", "--quiet", "--python", python, "--no-index", "--find-links", wheelhouse,
              "-r", reqs], env=env, timeout=1800)
    proc.run([uv, "pip", "install", "--quiet", "--python", python, "--no-index", "--find-links", wheelhouse,
              "--no-deps", "-e", kit], env=env, timeout=600)
    marker.write_text(wanted + "\n")
    return {"changed": True, "debuglab": str(debuglab)}


def op_site(a: dict) -> dict:
    """The DevStack host's site file for its JupyterLab, once DevStack's python is known to
    run the notebooks' kernel: the same minor version as debuglab's venv (whose ipykernel,
    compiled parts included, the kernel borrows) and ipykernel importable behind DevStack's
    own packages. Nothing changes when the site file already says this."""
    from debuglab.notebooks import devstack

    stack, kit_python = _path(a["stack_dir"]), _path(a["kit_python"])
    python = _interpreter(a["venv_python"])
    version = "import sys, sysconfig; print('%d.%d' % sys.version_info[:2], sysconfig.get_paths()['purelib'])"
    try:
        ours, purelib = proc.run([kit_python, "-c", version], timeout=60).output.split()[-2:]
    except proc.ProcError as exc:
        raise DebuglabError(f"debuglab's venv ({kit_python}) does not run: {exc}") from exc
    try:
        theirs = proc.run([python, "-c", version], timeout=60).output.split()[-2]
    except proc.ProcError as exc:
        raise DebuglabError(f"DevStack's Python {python} does not run (the inventory's [devstack] venv_python): {exc}") from exc
    if theirs != ours:
        raise DebuglabError(f"DevStack's Python is {theirs}, but debuglab's venv and its wheels are for Python {ours}: "
                            f"the notebooks' kernel cannot load them; provision from a machine with Python {theirs}, "
                            "or set [devstack] notebook_command = \"\" to go without JupyterLab")
    try:
        proc.run([python, "-c", devstack.kernel_code(purelib, launch=False)], timeout=120)
    except proc.ProcError as exc:
        raise DebuglabError(f"DevStack's Python {python} cannot start the notebooks' kernel (ipykernel from {purelib}, "
                            f"behind DevStack's own packages): {exc}") from exc
    nova_conf = _path(a["nova_conf"])
    site = devstack.DevstackSite(
        stack_dir=stack, python=python, services=tuple((u, int(p)) for u, p in a["services"]),
        restart_command=a["restart_command"], journal_command=a["journal_command"],
        clouds_yaml=_path(a["clouds_yaml"]), nova_conf=nova_conf,
        config_command=a["config_command"].replace("{stack_dir}", str(stack)).replace("{nova_conf}", str(nova_conf)))
    return {"changed": site.write(), "python": theirs, "site": str(site.root / "site.toml")}


OPS = {"baseline": op_baseline, "collect": op_collect, "reset": op_reset, "tools": op_tools,
       "kit_venv": op_kit_venv, "site": op_site}


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
