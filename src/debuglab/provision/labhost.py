"""A `lab` host: debuglab installed on the host, the workspace built with its own
`debuglab lab create`, the mini-cloud and JupyterLab started there, on the host's loopback.

1. debuglab goes into a venv of its own (`[lab] venv`), editable from the uploaded kit,
   its packages offline from the uploaded wheelhouse (see provision.wheelhouse): class
   VMs often reach no package index. The lab venv that `lab create` builds comes from
   the same wheelhouse (uv's UV_FIND_LINKS, offline).
2. One SSH round (provision.labside) tells what is there: the lab's bugs, whether the
   cloud and JupyterLab run. Only what differs is done, so a second run changes nothing.
3. A new bug set stops the cloud and JupyterLab, rebuilds the lab with `lab create
   --force` (the student's work is saved as patches first), and starts them again.
"""

from __future__ import annotations

import json
import shlex
from typing import Callable

from debuglab.provision import hosts
from debuglab.provision.errors import RemoteStepFailed
from debuglab.provision.hosts import remote_path
from debuglab.provision.inventory import DevstackSettings, Host, LabSettings


def venv_bin(settings: LabSettings | DevstackSettings, name: str) -> str:
    return f"{remote_path(settings.venv.rstrip('/'))}/bin/{name}"


def offline_env(settings: LabSettings | DevstackSettings) -> str:
    """The environment under which debuglab on the host installs packages: from the
    wheelhouse only, never an index."""
    return f"UV_FIND_LINKS={remote_path(settings.wheelhouse)} UV_OFFLINE=1 PIP_NO_INDEX=1 " \
           f"PIP_FIND_LINKS={remote_path(settings.wheelhouse)}"


def debuglab_command(settings: LabSettings | DevstackSettings) -> str:
    """The host's debuglab (its venv), installing only from the uploaded wheelhouse."""
    return f"{offline_env(settings)} {venv_bin(settings, 'debuglab')}"


def read_state(conn, settings: LabSettings | DevstackSettings) -> dict:
    """provision.labside's report of the lab, its cloud and JupyterLab (of a DevStack
    host: its JupyterLab alone)."""
    host: Host = conn.debuglab_host
    where = (f"--devstack {remote_path(settings.stack_dir)}" if isinstance(settings, DevstackSettings)
             else remote_path(settings.dir))
    text = hosts.run(conn, f"cd / && {venv_bin(settings, 'python')} -m debuglab.provision.labside {where}",
                     "reading the lab's state")
    lines = text.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise RemoteStepFailed(host.label, f"reading the lab's state: no answer ({text[-500:]!r})") from exc
    if "error" in answer:
        raise RemoteStepFailed(host.label, f"reading the lab's state: {answer['error']}")
    return answer


def _command(template: str, settings: LabSettings) -> str:
    return template.replace("{debuglab}", debuglab_command(settings)).replace("{dir}", remote_path(settings.dir))


def provision(conn, host: Host, settings: LabSettings, bug_ids: list[str], *,
              on_step: Callable[[str], None]) -> dict:
    on_step("installing debuglab on the host (offline, from the wheelhouse)")
    venv = hosts.agent(conn, "kit_venv", {"venv": settings.venv, "kit_dir": host.kit_dir,
                                          "wheelhouse": settings.wheelhouse}, "installing debuglab")
    changed = venv["changed"]
    done = ["debuglab installed"] if venv["changed"] else []
    on_step("reading the lab's state")
    state = read_state(conn, settings)
    dl = debuglab_command(settings)
    lab = remote_path(settings.dir)
    wanted = sorted(bug_ids)
    have = state["lab"]["bugs"] if state["lab"] else None
    if have != wanted:
        if state["notebook"].get("running"):
            on_step("stopping JupyterLab for the rebuild")
            hosts.run(conn, f"{dl} notebook stop --dir {lab}", "stopping JupyterLab")
        if state["cloud"]["running"]:
            on_step("stopping the mini-cloud for the rebuild")
            hosts.run(conn, f"{dl} cloud stop --dir {lab}", "stopping the mini-cloud")
        force = " --force" if state["lab"] is not None else ""
        on_step("building the lab (debuglab lab create)" if state["lab"] is None
                else "rebuilding the lab for the new bug set (work saved first)")
        hosts.run(conn, f"{dl} lab create --dir {lab} --bugs {shlex.quote(','.join(bug_ids))}{force}", "lab create")
        changed = True
        done.append("lab built" if state["lab"] is None else "lab rebuilt for the new bug set")
        state = read_state(conn, settings)
    started = []
    if settings.cloud_command and not state["cloud"]["running"]:
        on_step("starting the mini-cloud")
        hosts.run(conn, _command(settings.cloud_command, settings), "starting the mini-cloud")
        started.append("cloud")
    if settings.notebook_command and not state["notebook"].get("running"):
        on_step("starting JupyterLab")
        hosts.run(conn, _command(settings.notebook_command, settings), "starting JupyterLab")
        started.append("JupyterLab")
    if started:
        changed = True
        done += [f"{what} started" for what in started]
        state = read_state(conn, settings)
    return {"changed": changed, "done": done, "lab": settings.dir, "bugs": bug_ids, "installed": venv["changed"],
            "started": started, "baseline": state["lab"]["baseline"] if state["lab"] else {},
            "cloud": state["cloud"], "notebook": state["notebook"], "debuglab": venv["debuglab"]}
