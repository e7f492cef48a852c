"""Typed errors of this package; the CLI turns each into one clear message and its exit code."""

from __future__ import annotations

from debuglab.core.errors import DebuglabError


class NotebookError(DebuglabError):
    """A notebook or the Jupyter kernel cannot be written or served."""


class JupyterLabRunning(NotebookError):
    """`start` while the lab's JupyterLab runs: nothing was started."""

    exit_code = 1


class JupyterLabNotRunning(NotebookError):
    """The command needs the lab's JupyterLab running."""

    exit_code = 1


class JupyterLabPortInUse(NotebookError):
    """The port asked for is held by another program."""

    exit_code = 2


class JupyterLabStartFailed(NotebookError):
    """JupyterLab exited or did not answer; the message carries its log's end."""

    exit_code = 3


class SiteError(DebuglabError):
    """The DevStack host's site file is missing or malformed."""


class LabRunError(NotebookError):
    """A notebook cell did not run as its notebook says it does."""

    def __init__(self, message: str, *, cell_id: str = "", output: str = ""):
        super().__init__(message)
        self.cell_id = cell_id
        self.output = output


class ScriptExhausted(LabRunError):
    """A cell asked for more input than its stdin script holds."""


class ScriptLeftOver(LabRunError):
    """A cell ended before it asked for every line of its stdin script."""


class CellFailed(LabRunError):
    """A cell raised an exception (and is not tagged raises-exception)."""


class CellTimedOut(LabRunError):
    """A cell ran longer than its timeout."""
