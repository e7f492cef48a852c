"""A DevStack host: the student's baseline in /opt/stack/nova with the bugs planted in
place (DevStack's repository kept aside untouched), the debugger tools in DevStack's Python, a
systemd drop-in per nova unit so that `breakpoint()` opens remote-pdb on loopback at a
fixed port, and a restart of the units whose code or environment changed. Then, unless
`notebook_command` is "", JupyterLab on the host's loopback: labs/devstack/ with DevStack's
python as kernel (debuglab.notebooks.devstack), from a venv of its own.

Only the drop-ins need root: they are written with `sudo tee` from content made here,
never by the kit's code on the host (which the student can edit) running as root.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from typing import Callable

from debuglab.catalog.model import Bug
from debuglab.provision import hosts, labhost
from debuglab.provision.hosts import remote_path
from debuglab.provision.inventory import DevstackSettings, Host

DROPIN_NAME = "debuglab.conf"


def dropin(port: int) -> str:
    return (
        "# written by debuglab provision: breakpoint() opens remote-pdb on loopback;\n"
        "# reach it through an SSH forward (debuglab tunnel)\n"
        "[Service]\n"
        "Environment=PYTHONBREAKPOINT=remote_pdb.set_trace\n"
        "Environment=REMOTE_PDB_HOST=127.0.0.1\n"
        f"Environment=REMOTE_PDB_PORT={port}\n"
    )


def dropin_path(settings: DevstackSettings, unit: str) -> str:
    return f"{settings.systemd_dir.rstrip('/')}/{unit}.service.d/{DROPIN_NAME}"


def bugs_by_project(bugs: list[Bug]) -> dict[str, list[str]]:
    """nova always (it is the student's baseline), other projects when they have bugs."""
    projects: dict[str, list[str]] = {"nova": []}
    for bug in bugs:
        projects.setdefault(bug.project, []).append(bug.id)
    return projects


def provision(conn, host: Host, settings: DevstackSettings, bugs: list[Bug], *,
              on_step: Callable[[str], None]) -> dict:
    on_step("re-baselining /opt/stack checkouts, planting bugs")
    base = hosts.agent(conn, "baseline", {"stack_dir": settings.stack_dir, "kit_dir": host.kit_dir,
                                          "projects": bugs_by_project(bugs)}, "re-baseline")["projects"]
    code_changed = any(p["changed"] for p in base.values())

    on_step("installing remote-pdb, pydevd-pycharm, debugpy into DevStack's Python")
    tools = hosts.agent(conn, "tools", {"venv_python": settings.venv_python, "kit_dir": host.kit_dir}, "debug tools")

    on_step("systemd drop-ins for remote-pdb")
    changed_units = write_dropins(conn, settings)

    units = [u for u, _ in settings.services] if (code_changed or tools["changed"]) else changed_units
    if units:
        on_step(f"restarting {len(units)} unit(s)")
        restart(conn, settings, units)
    left_out = [v["skipped"] for v in base.values() if v.get("skipped")]
    base = {p: v for p, v in base.items() if not v.get("skipped")}
    done = []
    if code_changed:
        done.append(f"bugs planted, {len(units)} unit(s) restarted")
    elif units:
        done.append(f"debugger set up, {len(units)} unit(s) restarted")
    notebook = start_jupyterlab(conn, host, settings, on_step=on_step) if settings.notebook_command else {}
    done += notebook.get("done", [])
    return {
        "baseline": {p: v["baseline_commit"] for p, v in base.items()},
        "saved_work": [v["saved_work"] for v in base.values() if v["saved_work"]],
        "left_out": left_out,
        "changed": bool(done),
        "done": done,
        "restarted": units,
        "ports": dict(settings.services),
        "notebook": notebook.get("state", {"running": False}),
    }


def start_jupyterlab(conn, host: Host, settings: DevstackSettings, *, on_step: Callable[[str], None]) -> dict:
    """debuglab in a venv of its own (offline, from the uploaded wheelhouse), the site file
    that DevStack's python as kernel needs, and JupyterLab on the host's loopback, started
    (or restarted when its kit venv or site changed)."""
    on_step("installing debuglab for JupyterLab (offline, from the wheelhouse)")
    venv = hosts.agent(conn, "kit_venv", {"venv": settings.venv, "kit_dir": host.kit_dir,
                                          "wheelhouse": settings.wheelhouse}, "installing debuglab")
    on_step("checking DevStack's python as the notebooks' kernel")
    site = hosts.agent(conn, "site", {
        "stack_dir": settings.stack_dir, "venv_python": settings.venv_python,
        "kit_python": settings.venv.rstrip("/") + "/bin/python", "services": [list(s) for s in settings.services],
        "restart_command": settings.restart_command, "journal_command": settings.journal_command,
        "clouds_yaml": settings.clouds_yaml, "nova_conf": settings.nova_conf,
        "config_command": settings.config_command}, "the notebooks' kernel")
    state = labhost.read_state(conn, settings)["notebook"]
    done = ["debuglab installed"] if venv["changed"] else []
    stack = remote_path(settings.stack_dir)
    dl = labhost.debuglab_command(settings)
    if state.get("running") and (venv["changed"] or site["changed"]):
        on_step("stopping JupyterLab (its kernel changed)")
        hosts.run(conn, f"{dl} notebook stop --devstack {stack}", "stopping JupyterLab")
        state = {"running": False}
    if not state.get("running"):
        on_step("starting JupyterLab")
        command = settings.notebook_command.replace("{debuglab}", dl).replace("{stack_dir}", stack)
        hosts.run(conn, command, "starting JupyterLab")
        state = labhost.read_state(conn, settings)["notebook"]
        done.append("JupyterLab started")
    return {"done": done, "state": state}


def write_dropins(conn, settings: DevstackSettings) -> list[str]:
    """Write the drop-ins that differ from what they should be; the units changed."""
    wanted = {unit: dropin(port) for unit, port in settings.services}
    paths = {unit: dropin_path(settings, unit) for unit in wanted}
    listing = hosts.run(conn, "sha256sum " + " ".join(remote_path(p) for p in paths.values()) + " 2>/dev/null; true",
                        "reading drop-ins")
    have = {}
    for line in listing.splitlines():
        digest, _, path = line.partition("  ")
        have[path.strip()] = digest
    changed = []
    sudo = settings.sudo.strip()
    for unit, text in wanted.items():
        path = paths[unit]
        digest = hashlib.sha256(text.encode()).hexdigest()
        # sha256sum prints the path as the shell expanded it
        if any(p.endswith(path.lstrip("~")) and d == digest for p, d in have.items()):
            continue
        folder = remote_path(path.rsplit("/", 1)[0])
        payload = base64.b64encode(text.encode()).decode()
        hosts.run(conn, f"{sudo} mkdir -p {folder} && echo {payload} | base64 -d | {sudo} tee {remote_path(path)} >/dev/null",
                  f"writing {path}")
        changed.append(unit)
    return changed


def restart(conn, settings: DevstackSettings, units: list[str]) -> None:
    command = settings.restart_command.replace("{units}", " ".join(shlex.quote(u) for u in units))
    hosts.run(conn, command, "restarting the units")
