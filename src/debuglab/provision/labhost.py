"""A `lab` host: the debuglab workspace built (or rebuilt for another bug set) with
`debuglab lab create` on the host, from the uploaded kit, then the mini-cloud started."""

from __future__ import annotations

import shlex
import tomllib
from typing import Callable

from debuglab.provision import hosts
from debuglab.provision.inventory import Host, LabSettings
from debuglab.provision.upload import remote_path


def _debuglab(host: Host, settings: LabSettings) -> str:
    return f"DEBUGLAB_KIT={remote_path(host.kit_dir)} {remote_path(settings.debuglab)}"


def current_bugs(conn, settings: LabSettings) -> list[str] | None:
    """The bugs of the lab on the host, None when there is no lab there."""
    lab = remote_path(settings.dir)
    text = hosts.run(conn, f"if [ -f {lab}/lab.toml ]; then cat {lab}/lab.toml; else echo '# none'; fi", "reading lab.toml")
    if text.strip() == "# none":
        return None
    try:
        return sorted(tomllib.loads(text)["lab"]["bugs"])
    except (tomllib.TOMLDecodeError, KeyError):
        return []  # unreadable: rebuild (lab create --force saves the work first)


def provision(conn, host: Host, settings: LabSettings, bug_ids: list[str], *,
              on_step: Callable[[str], None]) -> dict:
    have = current_bugs(conn, settings)
    dl = _debuglab(host, settings)
    lab = remote_path(settings.dir)
    changed = False
    if have != sorted(bug_ids):
        force = " --force" if have is not None else ""
        on_step("building the lab (debuglab lab create)" if have is None else "rebuilding the lab for the new bug set")
        hosts.run(conn, f"{dl} lab create --dir {lab} --bugs {shlex.quote(','.join(bug_ids))}{force}", "lab create")
        changed = True
    if settings.cloud_command:
        on_step("starting the mini-cloud")
        command = settings.cloud_command.replace("{debuglab}", dl).replace("{dir}", lab)
        hosts.run(conn, command, "starting the mini-cloud")
    return {"changed": changed, "lab": settings.dir, "bugs": bug_ids}
