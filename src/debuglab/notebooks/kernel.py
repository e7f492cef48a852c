"""The notebooks' runtime: the Jupyter kernel of a lab (`debuglab`, the lab venv) or of a
DevStack host (`debuglab-devstack`, DevStack's python), the folder JupyterLab serves (the
lab's own copy of the notebooks, made by debuglab.notebooks.student), and the environment
JupyterLab runs in. What the notebooks say is in debuglab.notebooks.content."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from debuglab.core.files import write_atomic
from debuglab.core.kit import Kit
from debuglab.lab.workspace import Workspace
from debuglab.notebooks import devstack, student
from debuglab.notebooks.content import (
    CLI_ENV,
    DEVSTACK_KERNEL_DISPLAY,
    DEVSTACK_KERNEL_NAME,
    DEVSTACK_LABS,
    KERNEL_DISPLAY,
    KERNEL_NAME,
    LAB_ENV,
)
from debuglab.notebooks.devstack import DevstackSite
from debuglab.notebooks.errors import NotebookError


def jupyter_dir(ws: Workspace | DevstackSite) -> Path:
    """The lab's Jupyter data folder: put it on JUPYTER_PATH to see the `debuglab` kernel."""
    return ws.root / "jupyter"


def debuglab_cli() -> str:
    """The debuglab command of this installation (the notebooks' `!debuglab ...`)."""
    beside = Path(sys.executable).parent / "debuglab"
    if beside.is_file():
        return str(beside)
    found = shutil.which("debuglab")
    if not found:
        raise NotebookError("cannot find the debuglab command: install the kit with `pip install -e .`")
    return found


DEVSTACK_JUPYTERLAB_PORT = 8888  # what `debuglab tunnel` forwards


class Place(Protocol):
    """Where the notebooks run: a lab (the `debuglab` kernel on the lab venv, serving the
    lab's own copy of the notebooks) or a DevStack host (`debuglab-devstack` on DevStack's
    python, serving the kit's labs/devstack/)."""

    kernel_name: str

    def kernel_spec(self) -> dict: ...

    def served_dir(self, kit: Kit) -> Path: ...

    def labs_dir(self, kit: Kit) -> Path: ...

    def missing_python(self) -> str: ...

    def default_port(self) -> int: ...


@dataclass(frozen=True)
class LabPlace:
    ws: Workspace
    kernel_name: str = KERNEL_NAME

    def kernel_spec(self) -> dict:
        return {
            "argv": [str(self.ws.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNEL_DISPLAY,
            "language": "python",
            "env": {
                LAB_ENV: str(self.ws.root),
                CLI_ENV: debuglab_cli(),
                "OS_CLIENT_CONFIG_FILE": str(self.ws.root / "clouds.yaml"),
            },
            "metadata": {"debugger": True},
        }

    def served_dir(self, kit: Kit) -> Path:
        return student_copy(self.ws, kit)

    def labs_dir(self, kit: Kit) -> Path:
        return kit.root / "labs"

    def missing_python(self) -> str:
        return f"{self.ws.python}: the lab has no venv; rebuild it with `debuglab lab create --force`"

    def default_port(self) -> int:
        return self.ws.ports["jupyterlab"]  # the lab's own (debuglab.lab.port_registry)


@dataclass(frozen=True)
class DevstackPlace:
    site: DevstackSite
    kernel_name: str = DEVSTACK_KERNEL_NAME

    def kernel_spec(self) -> dict:
        return {
            "argv": devstack.kernel_argv(self.site),
            "display_name": DEVSTACK_KERNEL_DISPLAY,
            "language": "python",
            "env": {**devstack.kernel_env(self.site), LAB_ENV: str(self.site.root), CLI_ENV: debuglab_cli()},
            "metadata": {"debugger": True},
        }

    def served_dir(self, kit: Kit) -> Path:
        return self.labs_dir(kit)

    def labs_dir(self, kit: Kit) -> Path:
        return kit.root / "labs" / DEVSTACK_LABS

    def missing_python(self) -> str:
        return (f"{self.site.python}: DevStack's python is not there; fix `venv_python` in the "
                f"inventory's [devstack] and provision again")

    def default_port(self) -> int:
        return DEVSTACK_JUPYTERLAB_PORT


def place(target: Workspace | DevstackSite) -> Place:
    """The place of a lab or of a DevStack host: the one spot that tells the two apart."""
    return DevstackPlace(target) if isinstance(target, DevstackSite) else LabPlace(target)


def kernel_name(target: Workspace | DevstackSite) -> str:
    return place(target).kernel_name


def student_copy(ws: Workspace, kit: Kit | None = None) -> Path:
    """The lab's own notebooks (<lab>/notebooks), refreshed from the kit: what JupyterLab serves."""
    dest = ws.root / student.FOLDER
    student.refresh(dest, (kit or Kit.default()).root / "labs", ws.bugs())
    return dest


def served_dir(target: Workspace | DevstackSite, kit: Kit) -> Path:
    """The folder JupyterLab serves: the lab's own copy, or labs/devstack/ on a DevStack host."""
    return place(target).served_dir(kit)


def labs_dir(target: Workspace | DevstackSite, kit: Kit) -> Path:
    """The kit's notebooks for the target: labs/, or labs/devstack/ on a DevStack host."""
    return place(target).labs_dir(kit)


def kernel_spec(ws: Workspace | DevstackSite) -> dict:
    return place(ws).kernel_spec()


def register_kernel(ws: Workspace | DevstackSite) -> Path:
    """Write the kernelspec `debuglab` (the lab venv's python; on a DevStack host
    `debuglab-devstack`, DevStack's python) into <lab>/jupyter/kernels; returns its folder.
    Jupyter finds it with JUPYTER_PATH=<lab>/jupyter (see jupyter_env)."""
    if not ws.python.exists():
        raise NotebookError(place(ws).missing_python())
    folder = jupyter_dir(ws) / "kernels" / kernel_name(ws)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "kernel.json", json.dumps(kernel_spec(ws), indent=2) + "\n")
    return folder


def jupyter_env(ws: Workspace | DevstackSite) -> dict[str, str]:
    """Environment entries that make Jupyter (and nbclient) find the lab's kernel."""
    paths = [str(jupyter_dir(ws))]
    if os.environ.get("JUPYTER_PATH"):
        paths.append(os.environ["JUPYTER_PATH"])
    return {"JUPYTER_PATH": os.pathsep.join(paths)}


# JupyterLab itself (serving labs/ with this kernel, as a service of the lab): debuglab.notebooks.jupyterlab
