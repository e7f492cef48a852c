"""The kit bundle a host receives, and uploading it only when its content hash changed.

The bundle holds what a host needs to build a lab or plant bugs: `src/`, `bugs/`,
`requirements/`, `labs/`, `pyproject.toml`, `README.md`, plus a wheelhouse of the
debugger tools (remote-pdb, pydevd-pycharm, debugpy, pinned with hashes from
requirements/lab.lock) for DevStack's Python. Never the instructor's solutions, the kit's
tests or benchmarks. Its hash is over paths and contents, so it is the same on every run
until a file changes; the host keeps it in `<kit_dir>/.kit-sha256`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from debuglab.core import proc
from debuglab.core.kit import Kit, cache_dir
from debuglab.lab.errors import UpstreamError
from debuglab.provision import hosts
from debuglab.provision.hosts import HASH_FILE, remote_path

PARTS = ("src", "bugs", "requirements", "labs", "pyproject.toml", "README.md")
SKIP = re.compile(r"(^|/)(__pycache__|\.pytest_cache|\.ipynb_checkpoints|[^/]*\.egg-info)(/|$)|\.py[cod]$")
DEBUG_TOOLS = ("remote-pdb", "pydevd-pycharm", "debugpy")
TOOLS_REQUIREMENTS = "requirements/debug-tools.txt"


@dataclass(frozen=True)
class Bundle:
    path: Path  # a .tar.gz in the cache
    sha256: str  # of the contents (paths and bytes), not of the archive
    size: int


def tools_requirements(kit: Kit) -> str:
    """The debugger tools' lines of requirements/lab.lock (name==version and hashes)."""
    text = kit.venv_lock.read_text()
    out = []
    for name in DEBUG_TOOLS:
        match = re.search(rf"^{re.escape(name)}==\S+(?: \\\n\s+--hash=\S+)+", text, re.MULTILINE)
        if not match:
            raise UpstreamError(f"{kit.venv_lock}: no pinned {name} (needed on DevStack hosts)")
        out.append(match.group(0))
    return "\n".join(out) + "\n"


def tool_wheels(kit: Kit, cache: Path) -> list[Path]:
    """Wheels of the debugger tools, built once into the cache (pip, hash-checked)."""
    reqs = tools_requirements(kit)
    digest = hashlib.sha256(reqs.encode()).hexdigest()[:16]
    folder = cache / "provision" / f"wheels-{digest}"
    if not (folder / ".complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        req_file = folder / "requirements.txt"
        req_file.write_text(reqs)
        try:
            proc.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--require-hashes",
                      "-r", req_file, "-w", folder], timeout=900)
        except proc.ProcError as exc:
            raise UpstreamError(f"cannot get the debugger tools' wheels: {exc}") from exc
        (folder / ".complete").write_text("")
    return sorted(folder.glob("*.whl"))


def _kit_files(kit: Kit) -> list[tuple[str, Path]]:
    files = []
    for part in PARTS:
        top = kit.root / part
        if top.is_file():
            files.append((part, top))
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not SKIP.search(d + "/"))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(kit.root).as_posix()
                if not SKIP.search(rel):
                    files.append((rel, path))
    return files


def build(kit: Kit | None = None, cache: Path | None = None, *, with_tools: bool = True) -> Bundle:
    """The bundle of the kit as it is now (reused from the cache when unchanged)."""
    kit = kit or Kit.default()
    cache = cache or cache_dir()
    members: list[tuple[str, bytes]] = [(rel, path.read_bytes()) for rel, path in _kit_files(kit)]
    members.append((TOOLS_REQUIREMENTS, tools_requirements(kit).encode()))
    if with_tools:
        members += [(f"wheels/{w.name}", w.read_bytes()) for w in tool_wheels(kit, cache)]
    members.sort()
    digest = hashlib.sha256()
    for rel, data in members:
        digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    sha = digest.hexdigest()
    out = cache / "provision" / f"kit-{sha[:16]}.tar.gz"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".partial")
        with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
            for rel, data in members:
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(HASH_FILE)
            info.size, info.mode = len(sha) + 1, 0o644
            tar.addfile(info, io.BytesIO(sha.encode() + b"\n"))
        tmp.replace(out)
        # every change of the kit makes a new bundle (two kinds: with and without the
        # tools' wheels): keep the newest four
        old = sorted(out.parent.glob("kit-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)[4:]
        for stale in old:
            stale.unlink(missing_ok=True)
    return Bundle(out, sha, out.stat().st_size)


def upload(conn, bundle, dest_dir: str, current: str | None, what: str = "kit") -> bool:
    """Put `bundle` (a kit Bundle or a Wheelhouse: `.path`, `.sha256`) on the host as
    `dest_dir` unless `current` (the hash the host holds) already matches. It is unpacked
    beside the old one and swapped in. True when uploaded."""
    if current == bundle.sha256:
        return False
    dest = remote_path(dest_dir.rstrip("/"))
    # the archive goes beside its folder (the SSH user's own), not to a shared /tmp
    tmp = hosts.run(conn, f"rm -rf {dest}.new && mkdir -p {dest}.new && echo {dest}.upload.tar",
                    f"preparing the {what} upload").strip()
    try:
        conn.put(str(bundle.path), tmp)
    except Exception as exc:
        raise hosts.as_host_error(conn.debuglab_host, exc) from exc
    tmp = shlex.quote(tmp)
    # JupyterLab serves the kit's labs/: notebooks a student saved there are kept aside
    # (with the kit's own older notebooks, when those changed) before the swap
    keep = (f"if [ -d {dest}/labs ] && ! diff -rq {dest}/labs {dest}.new/labs >/dev/null 2>&1; then "
            f"mkdir -p {dest}-saved-notebooks && mv {dest}/labs {dest}-saved-notebooks/$(date +%Y%m%d-%H%M%S); fi && "
            if what == "kit" else "")
    hosts.run(
        conn,
        f"tar -xf {tmp} -C {dest}.new && rm -f {tmp} && {keep}rm -rf {dest}.old && "
        f"{{ [ ! -e {dest} ] || mv {dest} {dest}.old; }} && mv {dest}.new {dest} && rm -rf {dest}.old",
        f"unpacking the {what}",
    )
    return True
