"""The pinned upstream sdists: the lock file, downloads, the cache and hash checks."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from debuglab.core import proc
from debuglab.core.errors import ProcError
from debuglab.lab.errors import UpstreamError

FIELDS = ("version", "sdist", "sha256", "package", "unit_tests")


@dataclass(frozen=True)
class Project:
    """One upstream project a lab holds a checkout of (DevStack's /opt/stack/<name>)."""

    name: str
    version: str
    sdist: str
    sha256: str
    package: str  # its top-level import package
    unit_tests: str  # where its unit tests live, relative to the checkout root

    @property
    def hidden_tests_dir(self) -> str:
        """Where a grading or verification copy holds the bugs' hidden test modules."""
        return f"{self.unit_tests}/debuglab_hidden"


def load_lock(path: Path) -> dict[str, Project]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UpstreamError(f"{path}: cannot read the upstream lock: {exc}") from exc
    projects = {}
    for name, entry in data.get("projects", {}).items():
        missing = [f for f in FIELDS if not isinstance(entry.get(f), str) or not entry.get(f)]
        if missing:
            raise UpstreamError(f"{path}: [projects.{name}] lacks {', '.join(missing)}")
        projects[name] = Project(name=name, **{f: entry[f] for f in FIELDS})
    if not projects:
        raise UpstreamError(f"{path}: no [projects.*] tables")
    return projects


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(project: Project, cache: Path) -> Path:
    """The project's sdist from the cache, downloaded (by name and version, with pip)
    when absent. Its sha256 always matches the lock, or this raises."""
    cached = cache / "sdists" / project.sdist
    if cached.is_file():
        if sha256_of(cached) == project.sha256:
            return cached
        # a corrupt cache entry is kept aside for inspection and fetched anew
        cached.replace(cached.with_name(cached.name + ".corrupt"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cached.parent, prefix=".download-") as tmp:
        try:
            proc.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                 "--dest", tmp, f"{project.name}=={project.version}"],
                timeout=600,
            )
        except ProcError as exc:
            raise UpstreamError(
                f"cannot download {project.name} {project.version} from PyPI: {exc}"
            ) from exc
        got = Path(tmp) / project.sdist
        if not got.is_file():
            names = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
            raise UpstreamError(
                f"pip downloaded {names}, not {project.sdist} for {project.name} {project.version}"
            )
        check_hash(project, got)
        got.replace(cached)
    return cached


def check_hash(project: Project, sdist: Path) -> None:
    actual = sha256_of(sdist)
    if actual != project.sha256:
        raise UpstreamError(
            f"{sdist}: sha256 {actual} does not match the lock's {project.sha256} "
            f"for {project.name} {project.version}; the file is corrupt or not the pinned "
            "release: delete it and run again, or fix requirements/upstream.lock"
        )


def extract(project: Project, sdist: Path, dest: Path) -> Path:
    """Unpack the sdist's tree to `dest` (which must not exist)."""
    check_hash(project, sdist)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".extract-") as tmp:
        try:
            with tarfile.open(sdist) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise UpstreamError(f"{sdist}: cannot unpack: {exc}") from exc
        tops = list(Path(tmp).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise UpstreamError(f"{sdist}: expected one top-level folder, found {len(tops)}")
        tops[0].replace(dest)
    return dest


def checkout_version(checkout: Path) -> tuple[str, str] | None:
    """(name, version) of the upstream release a checkout holds, from its PKG-INFO."""
    pkg_info = checkout / "PKG-INFO"
    if not pkg_info.is_file():
        return None
    fields = {}
    for line in pkg_info.read_text(errors="replace").splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        fields[key.strip().lower()] = value.strip()
    if "name" in fields and "version" in fields:
        return fields["name"], fields["version"]
    return None


def copy_tree(src: Path, dest: Path) -> None:
    """A cheap copy of a checkout: hard links where possible (patching replaces files,
    so a link is never written through)."""
    try:
        proc.run(["cp", "-al", src, dest], timeout=300)
    except ProcError:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)
