"""The lab workspace, shaped like DevStack: `stack/<project>` checkouts whose one commit is
the baseline with the bugs in it, one `venv` built from the lock, and `lab.toml`.

A workspace is built in a temporary folder beside its destination and renamed into
place, so an interrupted or failed build leaves the old workspace (if any) intact.
"""

from __future__ import annotations

import datetime
import errno
import os
import shutil
import stat
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

import tomli_w

import debuglab
from debuglab.catalog.model import Bug, Catalog
from debuglab.core import private, proc
from debuglab.core.console import Step
from debuglab.core.errors import DebuglabError, ProcError
from debuglab.core.files import write_atomic
from debuglab.core.kit import Kit, cache_dir, uv_bin
from debuglab.lab import gitrepo, inject, port_registry, upstream
from debuglab.lab.errors import WorkspaceError

LAB_TOML = "lab.toml"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: Path) -> "Workspace":
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root} is a file, not a lab folder; give --dir the lab's folder (the one that "
                                 f"holds {LAB_TOML}, stack/ and venv/)")
        if not (root / LAB_TOML).is_file():
            raise WorkspaceError(f"{root}: no lab here (no {LAB_TOML}); create one with `debuglab lab create --dir {quote(str(root))}`")
        return cls(root.resolve())

    @classmethod
    def containing(cls, path: Path) -> "Workspace | None":
        """The workspace a checkout belongs to, if any."""
        for parent in Path(path).resolve().parents:
            if (parent / LAB_TOML).is_file():
                return cls(parent)
        return None

    @property
    def info(self) -> dict:
        path = self.root / LAB_TOML
        try:
            return tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise WorkspaceError(f"{path}: unreadable ({exc}); rebuild with `debuglab lab create --force`") from exc

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def saved_work(self) -> Path:
        """Where student work is saved as patches before anything sets it aside."""
        return self.root / "saved-work"

    @property
    def ports(self) -> dict[str, int]:
        """The ports this lab owns on the machine (debuglab.lab.port_registry)."""
        return port_registry.of(self.root)

    def checkout(self, project: str) -> Path:
        return self.root / "stack" / project

    def baseline_commit(self, project: str) -> str:
        return self.info["projects"][project]["baseline_commit"]

    def bugs(self) -> list[str]:
        return list(self.info["lab"]["bugs"])


def create(
    root: Path,
    bug_ids: list[str] | None,
    *,
    kit: Kit | None = None,
    force: bool = False,
    cache: Path | None = None,
    on_step: Step = lambda text: None,
) -> Workspace:
    """Build a lab at `root` with the given bugs (all for [], none for None: a pristine
    lab); see the module docstring."""
    kit = kit or Kit.default()
    cache = cache or cache_dir()
    root = Path(root).absolute()
    _remove_leftovers(root)
    bugs = [] if bug_ids is None else Catalog.load(kit.bugs_dir, bug_ids).select(bug_ids)
    projects = upstream.load_lock(kit.upstream_lock)
    old = _check_destination(root, force)

    build = root.parent / f".{root.name}.building-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    try:
        build.mkdir(parents=True)
    except OSError as exc:
        base = next(p for p in build.parents if p.exists())  # the nearest folder that is there
        if exc.errno == errno.ENOENT and base.is_dir():  # /proc, /sys: there, but they take no new folder
            raise WorkspaceError(f"cannot build the lab {root}: {base} is not a place for a lab (no folder can be "
                                 "created in it); choose a --dir in a folder you can write") from None
        raise WorkspaceError(f"cannot build the lab {root}: {root.parent}: {exc.strerror}; choose a --dir "
                             "in a folder you can write (the lab is built beside it, then renamed)") from None
    try:
        record = _build(build, root, bugs, projects, kit, cache, on_step)
        record["ports"] = port_registry.allocate(root, keep=port_registry.of(old) if old is not None else None)
        if old is not None:
            on_step("saving the old lab's work")
            for path in _keep_old_work(Workspace(old), build):
                on_step(f"saved your work: {path}")
            _keep_token(old, build)
        (build / LAB_TOML).write_text(tomli_w.dumps(record))
        _swap_in(build, root, old)
    except DebuglabError as exc:  # name the lab, not the temporary folder it was built in
        shutil.rmtree(build, ignore_errors=True)
        exc.args = (str(exc).replace(str(build), str(root)),)
        raise
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return Workspace(root)


def _remove_leftovers(root: Path) -> None:
    """Folders an earlier build of this lab left when it was killed (SIGKILL, a crash):
    `.<lab>.building-PID` and `.<lab>.old-PID` whose process is gone."""
    from debuglab.core.processes import alive

    if not root.parent.is_dir():
        return
    for kind in ("building", "old"):
        for leftover in root.parent.glob(f".{root.name}.{kind}-*"):
            pid = leftover.name.rsplit("-", 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)


def _check_destination(root: Path, force: bool) -> Path | None:
    """The old lab to replace, None for a fresh place; refuse anything else."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a folder; choose another --dir")
    if (root / LAB_TOML).is_file():
        if not force:
            raise WorkspaceError(
                f"{root} is already a lab; `debuglab lab create --force` rebuilds it "
                "(your changes are saved as patches in saved-work/ first)"
            )
        return root
    if root.is_mount():
        raise WorkspaceError(f"{root} is a mount point: a lab is built beside its folder and renamed into place, "
                             f"which a mount point cannot take; choose a folder inside it, e.g. --dir {quote(str(root / 'lab'))}")
    entries = sorted(p.name for p in root.iterdir())
    if entries:
        shown = ", ".join(entries[:5]) + (" …" if len(entries) > 5 else "")
        raise WorkspaceError(f"{root} exists and holds other files ({shown}); choose another --dir or empty it")
    root.rmdir()
    return None


def _build(build: Path, root: Path, bugs: list[Bug], projects: dict, kit: Kit, cache: Path, on_step: Step) -> dict:
    record = {
        "lab": {
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "debuglab": debuglab.__version__,
            "bugs": [bug.id for bug in bugs],
        },
        "projects": {},
        "venv": {"lock_sha256": upstream.sha256_of(kit.venv_lock), "python": sys.version.split()[0]},
    }
    (build / "stack").mkdir()
    for project in projects.values():
        on_step(f"fetching {project.name} {project.version}")
        sdist = upstream.fetch(project, cache)
        checkout = build / "stack" / project.name
        on_step(f"unpacking {project.name} into stack/{project.name}")
        upstream.extract(project, sdist, checkout)
        mine = [bug for bug in bugs if bug.project == project.name]
        if mine:
            on_step(f"planting {len(mine)} bug(s) in {project.name}")
            inject.inject(checkout, mine)
        on_step(f"committing the {project.name} baseline")
        record["projects"][project.name] = {
            "version": project.version,
            "sdist": project.sdist,
            "sha256": project.sha256,
            "path": f"stack/{project.name}",
            "bugs": [bug.id for bug in mine],
            "baseline_commit": gitrepo.commit_baseline(checkout),
        }
    checkouts = [build / "stack" / p for p in projects]
    # bytecode for the checkouts compiles (same Python as the venv) while uv installs
    with ThreadPoolExecutor(max_workers=1) as pool:
        compiled = pool.submit(proc.run, [sys.executable, "-m", "compileall", "-q", "-j", "0", *checkouts],
                               timeout=600)
        build_venv(build / "venv", kit.venv_lock, checkouts, [p.version for p in projects.values()],
                   cache, on_step)
        compiled.result()
    _make_relative(build, root)
    return record


def build_venv(venv: Path, lock: Path, checkouts: list[Path], versions: list[str], cache: Path, on_step: Step) -> None:
    """The lab venv: every package from the hash-pinned lock, then the checkouts editable.
    Bytecode is compiled (this environment sets PYTHONDONTWRITEBYTECODE, and without .pyc
    files every nova start pays its imports twice); a cache that holds everything is
    installed from offline (revalidating would rebuild the wheel-less sdists)."""
    uv = uv_bin()
    env = {"UV_CACHE_DIR": str(cache / "uv"), "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    on_step("creating the lab venv")
    proc.run([uv, "venv", "--quiet", "--relocatable", "--python", sys._base_executable, venv], env=env)
    python = venv / "bin" / "python"
    install = [uv, "pip", "install", "--quiet", "--python", python, "--require-hashes",
               "--compile-bytecode", "-r", lock]
    try:
        on_step("installing the lab's packages from the cache")
        proc.run([*install, "--offline"], env=env, timeout=900)
    except ProcError:
        on_step("installing the lab's packages (downloading what the cache lacks)")
        proc.run(install, env=env, timeout=1800)
    on_step("installing the checkouts editable")
    for checkout, version in zip(checkouts, versions):
        # pbr reads the version from git tags, which a lab baseline does not have
        proc.run([uv, "pip", "install", "--quiet", "--offline", "--python", python, "--no-deps",
                  "--no-build-isolation", "--config-setting", "editable_mode=compat", "-e", checkout],
                 env={**env, "PBR_VERSION": version}, timeout=600)


def _make_relative(build: Path, root: Path) -> None:
    """Point the venv's editable installs at the checkouts by relative paths, so the lab
    works once renamed into place (and wherever it is moved)."""
    site = next((build / "venv" / "lib").glob("python*/site-packages"))
    for pth in site.glob("__editable__.*.pth"):
        lines = []
        for line in pth.read_text().splitlines():
            path = Path(line)
            if path.is_absolute() and path.is_relative_to(build):
                line = os.path.relpath(path, site)
            lines.append(line)
        pth.write_text("\n".join(lines) + "\n")
    for direct_url in site.glob("*.dist-info/direct_url.json"):
        text = direct_url.read_text()
        if str(build) in text:
            direct_url.write_text(text.replace(str(build), str(root)))


# What the kit makes at a lab's root; anything else there is the student's.
KIT_MADE = ("stack", "venv", LAB_TOML, "cloud", "jupyter", "saved-work", "openrc", "clouds.yaml")


def _keep_old_work(old: Workspace, build: Path) -> list[Path]:
    """Before an old lab is replaced: everything its student made since the baseline (their
    commits as `git format-patch`, their uncommitted and untracked changes, the files they
    added at the lab's root such as local.conf or notes), and every patch it had saved, go
    to the new lab's saved-work/. Returns what was saved now."""
    saved = build / "saved-work"
    if old.saved_work.is_dir():  # links stay links: a link saved once is never followed
        _copy(old.saved_work, saved)
    kept = []
    for checkout in sorted((old.root / "stack").glob("*")):
        if gitrepo.is_repo(checkout):
            base = _baseline_of(old, checkout)
            kept += gitrepo.save_work(checkout, saved, checkout.name, base)
            kept += gitrepo.save_refs(checkout, saved, checkout.name, base)
    if (old.root / "notebooks").is_dir():  # the student's notebooks go on in the new lab (and are saved below)
        _copy(old.root / "notebooks", build / "notebooks")
    theirs = sorted(p for p in old.root.iterdir() if p.name not in KIT_MADE and not p.name.startswith(".verify-"))
    if theirs:
        folder = saved / f"{time.strftime('%Y%m%d-%H%M%S')}-lab-files"
        for path in theirs:
            if _special(path):  # a FIFO or socket holds no data to save
                continue
            if path.is_dir() and not path.is_symlink():
                _copy(path, folder / path.name)
            else:
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, folder / path.name, follow_symlinks=False)
        kept.append(folder)
    return [build.parent / old.root.name / p.relative_to(build) for p in kept]


def _copy(source: Path, dest: Path) -> None:
    """A folder of the student's, copied with its links as links (never followed); what
    cannot be copied is named in one clear error, not a list of tuples."""
    try:
        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True,
                        ignore=lambda folder, names: [n for n in names if _special(Path(folder) / n)])
    except shutil.Error as exc:
        problems = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [exc.args]
        shown = "; ".join(f"{item[0]}: {item[-1]}" for item in problems[:3] if isinstance(item, (tuple, list)))
        raise WorkspaceError(f"could not save {source} before the rebuild ({shown or exc}); the old lab is "
                             "untouched: move those files out of it, then run `debuglab lab create --force` again") from exc


TOKEN = Path("jupyter") / "token"  # JupyterLab's (debuglab.notebooks.jupyterlab)


def _keep_token(old: Path, build: Path) -> None:
    """JupyterLab's token goes on in the rebuilt lab: the address the student opened
    before the rebuild keeps working (a new token made it answer 403)."""
    token = old / TOKEN
    if token.is_file():
        private.folder(build / TOKEN.parent)
        private.write_text(build / TOKEN, token.read_text())


def _special(path: Path) -> bool:
    """A FIFO, socket or device: nothing a student wrote, and copying one blocks or fails."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def _baseline_of(ws: Workspace, checkout: Path) -> str:
    """The checkout's baseline commit as lab.toml records it, else its first commit."""
    try:
        return ws.info["projects"][checkout.name]["baseline_commit"]
    except (KeyError, WorkspaceError):
        return gitrepo.git(checkout, "rev-list", "--max-parents=0", "HEAD").split()[0]


def _swap_in(build: Path, root: Path, old: Path | None) -> None:
    if old is None:
        build.rename(root)
        return
    aside = root.parent / f".{root.name}.old-{os.getpid()}"
    old.rename(aside)
    try:
        build.rename(root)
    except BaseException:
        aside.rename(old)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def inject_bugs(ws: Workspace, project: str, bugs: list[Bug], *, force: bool = False) -> inject.InjectResult:
    """Plant more bugs in a lab's checkout, then make the result its new baseline."""
    checkout = ws.checkout(project)
    result = inject.inject(checkout, bugs, force=force, saved_dir=ws.saved_work)
    if result.applied:
        info = ws.info
        entry = info["projects"][project]
        entry["baseline_commit"] = gitrepo.commit_baseline(checkout)
        entry["bugs"] = sorted(set(entry.get("bugs", [])) | set(result.applied))
        info["lab"]["bugs"] = sorted(set(info["lab"]["bugs"]) | set(result.applied))
        write_atomic(ws.root / LAB_TOML, tomli_w.dumps(info))
    return result
