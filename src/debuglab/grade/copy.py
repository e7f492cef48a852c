"""Grading copies. Once per grading session: the pristine upstream tree (from the pinned
sdist) with the hidden tests and the runner canary, compiled once, and from it the
injected baseline (the lab's bugs planted). Per bug of a submission: a hard-linked copy
of that baseline plus only the student's in-scope hunks. So every test file, test base
class and runner config is upstream's, whatever the student edited."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from debuglab.catalog.model import Bug
from debuglab.core import proc
from debuglab.core.errors import DebuglabError
from debuglab.core.kit import Kit, cache_dir
from debuglab.grade.errors import ApplyError
from debuglab.lab import inject, upstream
from debuglab.lab.errors import InjectError

CANARY_MODULE = "test_debuglab_canary"
# Run after every bug's tests, in the same worker: a runner or assertion that a student's
# code has tampered with shows up as a test that must fail reporting success.
CANARY_SOURCE = '''"""debuglab's runner canary: these tests must fail (and one must pass). If a failing
one reports success, the code under test has tampered with the test runner."""

import unittest

import testtools


class Canary(testtools.TestCase):
    def test_must_fail_assert_equal(self):
        self.assertEqual("debuglab", "canary")

    def test_must_fail_raise(self):
        raise RuntimeError("debuglab canary")

    def test_must_fail_fail(self):
        self.fail("debuglab canary")

    def test_must_pass(self):
        self.assertTrue(True)


class UnittestCanary(unittest.TestCase):
    def test_must_fail_unittest(self):
        self.assertEqual(1, 2)
'''


def canary_ids(project: upstream.Project) -> dict[str, str]:
    """Canary test id → the status it must report."""
    base = project.hidden_tests_dir.replace("/", ".") + "." + CANARY_MODULE
    return {
        f"{base}.Canary.test_must_fail_assert_equal": "fail",
        f"{base}.Canary.test_must_fail_raise": "fail",
        f"{base}.Canary.test_must_fail_fail": "fail",
        f"{base}.Canary.test_must_pass": "success",
        f"{base}.UnittestCanary.test_must_fail_unittest": "fail",
    }


class Trees:
    """The session's pristine and baseline trees (built on first use, thread-safe) and
    the per-bug grading copies, all under one scratch folder removed by close()."""

    def __init__(self, python: Path, bugs: list[Bug], kit: Kit | None = None, scratch: Path | None = None,
                 hard_links: bool = True):
        """`hard_links=False` gives every grading copy files of its own: for a worker that
        runs as the grader's own user, who could otherwise write through a link into the
        baseline that later copies share."""
        self.kit = kit or Kit.default()
        self.hard_links = hard_links
        self.python = Path(python)
        self.bugs = {bug.id: bug for bug in bugs}
        self.projects = upstream.load_lock(self.kit.upstream_lock)
        self.scratch = Path(tempfile.mkdtemp(prefix="debuglab-grade-", dir=scratch))
        os.chmod(self.scratch, 0o755)
        self._lock = threading.Lock()
        self._pristine: dict[str, Path] = {}
        self._baselines: dict[tuple[str, tuple[str, ...]], Path] = {}
        self._n = 0
        self._stdlib: dict[str, str] | None = None

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Trees":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _compile(self, tree: Path, paths: list[Path]) -> None:
        proc.run([self.python, "-m", "compileall", "-q", "-j", "0", *paths], timeout=900, cwd=tree)

    def _build_pristine(self, project: upstream.Project, tree: Path) -> None:
        upstream.extract(project, upstream.fetch(project, cache_dir()), tree)
        mine = [b for b in self.bugs.values() if b.project == project.name]
        inject.install_hidden_tests(tree, project, mine)
        (tree / project.hidden_tests_dir / f"{CANARY_MODULE}.py").write_text(CANARY_SOURCE)
        self._compile(tree, [tree / project.package])

    def _cache_key(self, project: upstream.Project) -> str:
        digest = hashlib.sha256()
        python = self.python.resolve()
        for part in (project.sha256, str(python), str(python.stat().st_mtime_ns), CANARY_SOURCE):
            digest.update(part.encode() + b"\0")
        for bug in sorted(self.bugs.values(), key=lambda b: b.id):
            if bug.project == project.name:
                digest.update(bug.id.encode() + b"\0" + bug.hidden_tests.read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    def pristine(self, project_name: str) -> Path:
        """The compiled pristine tree. With hard-linked copies (the worker runs as a uid of
        its own, which cannot write it) it is kept in the cache between sessions, keyed by
        the sdist, the Python and the hidden tests; else built in the scratch folder."""
        with self._lock:
            if project_name not in self._pristine:
                project = self.projects[project_name]
                root = _grade_cache() if self.hard_links else None
                cached = (root or self.scratch) / f"{project.name}-{project.version}-{self._cache_key(project)}"
                if root is not None:
                    if not (cached / "tree").is_dir():
                        building = Path(tempfile.mkdtemp(prefix=".building-", dir=_mkdirs(cached.parent)))
                        os.chmod(building, 0o755)
                        try:
                            self._build_pristine(project, building / "tree")
                            building.rename(cached)
                        except OSError:
                            if not (cached / "tree").is_dir():
                                raise
                        finally:
                            shutil.rmtree(building, ignore_errors=True)
                    tree = cached / "tree"
                else:
                    tree = self.scratch / f"{project.name}-pristine"
                    self._build_pristine(project, tree)
                self._pristine[project_name] = tree
            return self._pristine[project_name]

    def baseline(self, project_name: str, bug_ids: tuple[str, ...]) -> Path:
        """Pristine plus the inject patches of `bug_ids` (the student's lab's bugs)."""
        key = (project_name, tuple(sorted(bug_ids)))
        pristine = self.pristine(project_name)
        with self._lock:
            if key not in self._baselines:
                tree = self.scratch / f"{project_name}-baseline-{len(self._baselines)}"
                upstream.copy_tree(pristine, tree)
                patches = [self.bugs[i].inject_patch for i in key[1]]
                inject.apply_patches(tree, patches)
                touched = [tree / p for patch in patches for p in _paths(patch.read_text())]
                if touched:
                    self._compile(tree, touched)
                self._baselines[key] = tree
            return self._baselines[key]

    def copy(self, project_name: str, baseline_bugs: tuple[str, ...], patch_text: str, label: str) -> Path:
        """A fresh grading copy: the baseline plus `patch_text` (in-scope hunks only).
        ApplyError, naming git's complaint, when the hunks do not apply."""
        base = self.baseline(project_name, baseline_bugs)
        with self._lock:
            self._n += 1
            dest = self.scratch / f"copy-{self._n}-{_safe(label)}"
        if self.hard_links:
            upstream.copy_tree(base, dest)
        else:
            proc.run(["cp", "-a", base, dest], timeout=600)
        if patch_text.strip():
            patch = dest.parent / f"{dest.name}.patch"
            patch.write_text(patch_text)
            try:
                inject.apply_patches(dest, [patch])
            except InjectError as exc:
                raise ApplyError(str(exc).replace(str(patch), "the change").replace(str(dest), "the baseline")) from None
            for rel in _paths(patch_text):
                _drop_bytecode(dest / rel)
        return dest

    def readable_stdlib(self) -> dict[str, str]:
        """{the base Python's lib folder: a copy a job's uid can read}, when a folder above
        it is closed to other users (a pyenv Python under /root): the fork server's
        children import from it what the server did not, once they have dropped to
        their own uid. Hard links, made once per session; {} when not needed."""
        with self._lock:
            if self._stdlib is None:
                probe = proc.run([self.python, "-S", "-c", "import os, sys; print(os.path.dirname(os.__file__))"],
                                 timeout=60)
                lib = Path(probe.output.strip().splitlines()[-1])
                self._stdlib = {}
                if not _readable_by_all(lib):
                    dest = self.scratch / "pylib" / lib.name
                    dest.mkdir(parents=True)
                    entries = [p for p in lib.iterdir() if p.name not in ("site-packages", "test", "idlelib",
                                                                          "tkinter", "turtledemo")]
                    try:
                        proc.run(["cp", "-al", *entries, dest], timeout=600)
                    except DebuglabError:
                        proc.run(["cp", "-a", *entries, dest], timeout=600)
                    self._stdlib = {str(lib.parent): str(dest.parent)}  # python311.zip sits beside it
            return self._stdlib

    def run_dir(self, label: str) -> Path:
        with self._lock:
            self._n += 1
            path = self.scratch / f"run-{self._n}-{_safe(label)}"
        path.mkdir()
        return path

    def discard(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)


def _grade_cache() -> Path | None:
    """Where compiled pristine trees are kept between sessions, readable by the sandbox's
    uids: the user's cache if other users can reach it, else a folder of our own in
    /var/tmp (never one that someone else made or can write)."""
    preferred = cache_dir() / "grade"
    if _readable_by_all(preferred.parent):
        return _mkdirs(preferred)
    shared = Path("/var/tmp" if Path("/var/tmp").is_dir() else tempfile.gettempdir())
    alt = shared / f"debuglab-grade-cache-{os.getuid()}"
    try:
        alt.mkdir(mode=0o755)
    except FileExistsError:
        pass
    except OSError:
        return None
    st = alt.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        return None
    return alt


def _mkdirs(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def _readable_by_all(path: Path) -> bool:
    """Whether every folder down to `path` lets other users through (a sandbox uid must
    read the cached tree); the folders that do not exist yet are made so."""
    path = path.absolute()
    for parent in reversed([path, *path.parents]):
        if parent.exists():
            if not parent.stat().st_mode & 0o001:
                return False
    return True


def _drop_bytecode(source: Path) -> None:
    """Remove the copy's (hard-linked) bytecode of a file the student changed: a change
    of the same size made in the second the baseline was compiled would otherwise pass
    the .pyc's mtime-and-size check, and the baseline's code would run instead."""
    cache = source.parent / "__pycache__"
    for pyc in cache.glob(f"{source.stem}.*.pyc") if cache.is_dir() else ():
        pyc.unlink()


def _paths(patch_text: str) -> list[str]:
    from debuglab.catalog.model import patch_paths

    return patch_paths(patch_text)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)[:60]
