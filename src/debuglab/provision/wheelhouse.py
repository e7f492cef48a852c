"""The wheelhouse a `lab` host (and a DevStack host's JupyterLab) installs from, so that
it needs no package index.

Class VMs often reach no PyPI. A lab host needs two Python environments: the kit's
venv (debuglab itself and what it imports: click, rich, uv, JupyterLab...) and the lab
venv that `debuglab lab create` builds from requirements/lab.lock (nova's ~190
packages). The instructor's machine builds, once per change of the locks, a folder of
wheels for both (`pip wheel`: hash-checked for lab.lock; for the kit's venv exactly the
versions installed here, so a host runs what the instructor tested), plus the pinned
nova and python-novaclient sdists. It is uploaded beside the kit, only when its content
hash changed, and hosts install from it with `--no-index` / uv's `--offline`.

Binary wheels are built for this machine's Python and platform: the hosts must run the
same Python minor version on the same architecture (the host check says so otherwise).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import re
import shutil
import sys
import sysconfig
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from debuglab.core import proc
from debuglab.core.kit import Kit, cache_dir, uv_bin
from debuglab.lab import upstream
from debuglab.lab.errors import UpstreamError

HASH_FILE = ".wheelhouse-sha256"
KIT_REQUIREMENTS = "kit-venv.txt"  # inside the wheelhouse: the kit venv's pins
SDISTS = "sdists"  # inside the wheelhouse: the upstream sdists, as the host's cache wants them
FORMAT = b"3"  # of the folder: a new way of building it makes a new wheelhouse


@dataclass(frozen=True)
class Wheelhouse:
    path: Path  # an uncompressed .tar in the cache (wheels do not compress further)
    sha256: str  # over names and contents
    size: int
    python: str  # "3.11": the Python minor version its binary wheels are for
    platform: str  # "linux-x86_64"
    requires_python: tuple[tuple[str, str], ...] = ()  # (wheel, specifier) narrower than "3.11"


def kit_requirements() -> str:
    """`name==version` for every package debuglab needs at run time (transitively), as
    installed here. Not hash-pinned: the wheels come from this machine's installed set."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    done: set[tuple[str, str]] = set()  # (package, extra) walked
    todo = [("debuglab", "")]
    while todo:
        name, extra = todo.pop()
        key = canonicalize_name(name)
        if (key, extra) in done:
            continue
        done.add((key, extra))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise UpstreamError(f"{name} is needed by debuglab but not installed here: "
                                "reinstall the kit (pip install -e .)") from exc
        pins[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(req.name, "")] + [(req.name, e) for e in sorted(req.extras)]
    pins.pop("debuglab")
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def _pip_wheel(args: list, folder: Path, what: str) -> None:
    try:
        proc.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                  "-w", folder, *args], timeout=3600)
    except proc.ProcError as exc:
        raise UpstreamError(f"cannot build the wheelhouse ({what}): {exc}") from exc


def build(kit: Kit | None = None, cache: Path | None = None, *, with_lab: bool = True) -> Wheelhouse:
    """The wheelhouse for the kit's locks as they are now, built once into the cache.
    Without the lab (`with_lab=False`, for DevStack hosts, which run DevStack's own nova):
    the kit venv's wheels alone."""
    kit = kit or Kit.default()
    cache = cache or cache_dir()
    kit_reqs = kit_requirements()
    python = "%d.%d" % sys.version_info[:2]
    platform = sysconfig.get_platform()
    lab_parts = [kit.venv_lock.read_bytes(), kit.upstream_lock.read_bytes()] if with_lab else [b"kit only"]
    key = hashlib.sha256(b"\0".join([FORMAT, *lab_parts, kit_reqs.encode(), python.encode(),
                                     platform.encode()])).hexdigest()[:16]
    folder = cache / "provision" / f"wheelhouse-{key}"
    archive = folder.with_suffix(".tar")
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / SDISTS).mkdir(parents=True)
        reqs = folder / KIT_REQUIREMENTS
        reqs.write_text(kit_reqs)
        _pip_wheel(["-r", reqs], folder, "the kit's own venv")
        # the host installs debuglab editable from the kit: its build backend must be here too
        _pip_wheel(_build_requires(kit), folder, "the kit's build backend")
        if with_lab:
            _pip_wheel(["--require-hashes", "-r", kit.venv_lock], folder, f"the lab venv, {kit.venv_lock.name}")
            _sdists_for_built_wheels(kit.venv_lock, folder)
        _check_resolves(folder, reqs, "%d.%d.%d" % sys.version_info[:3])
        for project in upstream.load_lock(kit.upstream_lock).values() if with_lab else ():
            shutil.copy2(upstream.fetch(project, cache), folder / SDISTS / project.sdist)
        (folder / ".complete").write_text(json.dumps({"python": python, "platform": platform,
                                                      "requires_python": _requires_python(folder)}))
        archive.unlink(missing_ok=True)
    if not archive.is_file():
        _write_archive(folder, archive)
    sha = archive.with_suffix(".sha256").read_text().strip()
    done = json.loads((folder / ".complete").read_text())
    return Wheelhouse(archive, sha, archive.stat().st_size, python, platform,
                      tuple(tuple(x) for x in done["requires_python"]))


def _build_requires(kit: Kit) -> list[str]:
    import tomllib

    return list(tomllib.loads((kit.root / "pyproject.toml").read_text())["build-system"]["requires"])


def _lock_entries(lock: Path) -> dict[str, tuple[str, set[str], str]]:
    """canonical name -> (version, sha256 hashes, the entry's text) of a pip-compile lock."""
    from packaging.utils import canonicalize_name

    out = {}
    for match in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+)((?: \\\n\s+--hash=sha256:[0-9a-f]{64})+)", lock.read_text(), re.M):
        out[canonicalize_name(match[1])] = (match[2], set(re.findall(r"[0-9a-f]{64}", match[3])), match[0])
    return out


def _sdists_for_built_wheels(lock: Path, folder: Path) -> None:
    """A lock entry PyPI has only as an sdist (ovs, pydevd-pycharm) is pinned by the
    sdist's hash, which the wheel pip built from it cannot match: such entries go into
    the wheelhouse as their sdist (hash-checked), and the host builds them."""
    from packaging.utils import canonicalize_name, parse_wheel_filename

    entries = _lock_entries(lock)
    built = []
    for wheel in folder.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        entry = entries.get(canonicalize_name(name))
        if entry and entry[0] == str(version) and upstream.sha256_of(wheel) not in entry[1]:
            built.append((wheel, entry[2]))
    if not built:
        return
    subset = folder / ".sdist-only.txt"
    subset.write_text("\n".join(text for _, text in built) + "\n")
    try:
        proc.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                  "--no-binary", ":all:", "--require-hashes", "-r", subset, "-d", folder], timeout=1800)
    except proc.ProcError as exc:
        raise UpstreamError(f"cannot download the sdists of {', '.join(w.name for w, _ in built)}: {exc}") from exc
    finally:
        subset.unlink(missing_ok=True)
    for wheel, _ in built:
        wheel.unlink()


def _check_resolves(folder: Path, reqs: Path, python: str) -> None:
    """The kit venv's pins resolve from these wheels alone (as they must on a host)."""
    try:
        proc.run([uv_bin(), "pip", "compile", "--quiet", "--offline", "--no-index", "--find-links", folder,
                  "--python-version", python, "--no-header", "-o", "/dev/null", reqs],
                 env={"UV_CACHE_DIR": str(folder / ".uv-cache")}, timeout=300)
    except proc.ProcError as exc:
        raise UpstreamError(f"the wheelhouse {folder} does not hold everything the kit's venv needs: {exc}") from exc
    finally:
        shutil.rmtree(folder / ".uv-cache", ignore_errors=True)


def _requires_python(folder: Path) -> list[tuple[str, str]]:
    """The wheels whose Requires-Python says more than the minor version: a host's
    Python 3.11.2 cannot install a wheel that asks for >=3.11.5."""
    from email.parser import HeaderParser

    found = []
    for wheel in sorted(folder.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
            if name is None:
                continue
            spec = HeaderParser().parsestr(zf.read(name).decode("utf-8", "replace")).get("Requires-Python")
        if spec and re.search(r"\d+\.\d+\.\d+", spec):
            found.append((wheel.name, spec))
    return found


def _write_archive(folder: Path, archive: Path) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != ".complete")
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(folder).as_posix()
        digest.update(rel.encode() + b"\0" + upstream.sha256_of(path).encode())
    sha = digest.hexdigest()
    tmp = archive.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        for path in files:
            info = tar.gettarinfo(path, path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
        info = tarfile.TarInfo(HASH_FILE)
        info.size, info.mode = len(sha) + 1, 0o644
        tar.addfile(info, io.BytesIO(sha.encode() + b"\n"))
    archive.with_suffix(".sha256").write_text(sha + "\n")
    tmp.replace(archive)
    # a change of the locks makes a new wheelhouse: keep the newest four (with and without the lab)
    for old in sorted(archive.parent.glob("wheelhouse-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)[4:]:
        shutil.rmtree(old.with_suffix(""), ignore_errors=True)
        old.with_suffix(".sha256").unlink(missing_ok=True)
        old.unlink(missing_ok=True)


def platform_matches(host_python: str | None, host_platform: str | None, wh: Wheelhouse) -> str | None:
    """Why a host cannot install from this wheelhouse, or None when it can."""
    from packaging.specifiers import SpecifierSet

    refused = [f"{wheel.split('-')[0]} {wheel.split('-')[1]} needs Python {spec}"
               for wheel, spec in wh.requires_python
               if host_python and not SpecifierSet(spec).contains(host_python, prereleases=True)]
    if refused:
        return (f"the host's Python {host_python} is too old for the kit's packages ({'; '.join(refused)}): "
                "give the hosts a newer Python 3.11 (the inventory's `python`)")
    if host_python and ".".join(host_python.split(".")[:2]) != wh.python:
        return (f"the host runs Python {host_python}, but the wheelhouse's binary wheels are for Python {wh.python} "
                f"(the instructor's machine): use Python {wh.python} on the hosts, or run provision from a "
                f"machine with the hosts' Python")
    if host_platform and host_platform != wh.platform:
        return f"the host is {host_platform}, but the wheelhouse's binary wheels are for {wh.platform}"
    return None

