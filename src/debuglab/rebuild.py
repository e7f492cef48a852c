"""`lab create --force` on a lab whose cloud or JupyterLab runs.

They run from the folder being replaced: left running they would serve the old code from
a deleted folder and hold the lab's ports. So they stop first, the lab is rebuilt (the
student's work saved), and whatever ran starts again on the same ports, from the new lab
or, when the rebuild failed, from the old one that was kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from debuglab import jupyterlab, workspace
from debuglab.cloud import supervisor

Step = Callable[[str], None]


def rebuild(root: Path, bug_ids: list[str], *, on_step: Step = lambda text: None) -> workspace.Workspace:
    """workspace.create(force=True), with the lab's running services carried across."""
    old = workspace.Workspace.open(root)
    cloud = supervisor.read_state(old)
    notebook = jupyterlab.read_state(old)
    if cloud is not None:
        on_step("stopping the lab's cloud (it runs from the folder being rebuilt)")
        supervisor.stop(old)
    if notebook is not None:
        on_step("stopping the lab's JupyterLab")
        jupyterlab.stop(old)
    try:
        return workspace.create(root, bug_ids, force=True, on_step=on_step)
    finally:
        ws = workspace.Workspace.open(root)  # the new lab, or the old one the failure left
        if cloud is not None:
            on_step("starting the cloud again")
            supervisor.start(ws, ports=cloud.ports, debug=cloud.debug, debug_port=cloud.debug_port)
        if notebook is not None:
            on_step("starting JupyterLab again")
            jupyterlab.start(ws, port=notebook.port)
