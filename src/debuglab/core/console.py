"""What every command prints with: the two consoles and the spinner for long steps."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Callable

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

UNBOUNDED = 1000  # columns for output that is not a terminal's: a table as wide as its content


def _width(stream) -> int | None:
    """A terminal's own width (None: rich asks it); in a pipe, a notebook cell or under
    TTY_INTERACTIVE=0, $COLUMNS if set, else as wide as the content, so that no id, path
    or traceback line is broken for want of a screen."""
    interactive = os.environ.get("TTY_INTERACTIVE") != "0" and stream.isatty()
    if interactive:
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else UNBOUNDED


console = Console(soft_wrap=True, width=_width(sys.stdout))  # paths and commands are never broken across lines
err = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))

Step = Callable[[str], None]  # `on_step(text)`: the core says which step of a long job begins


@contextmanager
def steps(title: str):
    """A live spinner for a long job; each finished step stays on screen with its time.
    Yields the `on_step(text)` callback the core functions take."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task(title)
        state = {"text": None, "start": time.monotonic()}

        def on_step(text: str) -> None:
            if state["text"]:
                progress.console.print(f"  [green]✓[/] {state['text']} [dim]{time.monotonic() - state['start']:.1f} s[/]")
            state.update(text=text, start=time.monotonic())
            progress.update(task, description=text)

        yield on_step
        on_step("")
