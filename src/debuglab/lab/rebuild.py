"""`lab create --force` on a lab whose cloud or JupyterLab runs.

They run from the folder being replaced: left running they would serve the old code from
a deleted folder and hold the lab's ports. So they stop first, the lab is rebuilt (the
student's work saved), and whatever ran starts again on the same ports, from the new lab
or, when the rebuild failed, from the old one that was kept.

The lab does not know those services: each one describes itself as a `RunningService`
(`debuglab.cloud.supervisor.CARRIED`, `debuglab.notebooks.jupyterlab.CARRIED`) and the
command passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from debuglab.core.console import Step
from debuglab.lab import workspace


@dataclass(frozen=True)
class RunningService:
    """A background service of a lab that a rebuild stops, then starts again as it ran."""

    name: str  # as the steps say it: "cloud", "JupyterLab"
    read_state: Callable[[workspace.Workspace], Any]  # its state, or None when it does not run
    stop: Callable[[workspace.Workspace], Any]
    start_again: Callable[[workspace.Workspace, Any], Any]  # from the state read_state gave


def rebuild(root: Path, bug_ids: list[str] | None, *, services: Sequence[RunningService] = (),
            on_step: Step = lambda text: None) -> workspace.Workspace:
    """workspace.create(force=True), with the lab's running `services` carried across."""
    old = workspace.Workspace.open(root)
    running = [(service, state) for service in services if (state := service.read_state(old)) is not None]
    for service, _ in running:
        on_step(f"stopping the lab's {service.name} (it runs from the folder being rebuilt)")
        service.stop(old)
    try:
        return workspace.create(root, bug_ids, force=True, on_step=on_step)
    finally:
        ws = workspace.Workspace.open(root)  # the new lab, or the old one the failure left
        for service, state in running:
            on_step(f"starting the {service.name} again")
            service.start_again(ws, state)
