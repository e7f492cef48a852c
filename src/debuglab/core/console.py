"""What every command prints with: the two consoles and the spinner for long steps."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console(soft_wrap=True)  # paths and commands are never broken across lines
err = Console(stderr=True, soft_wrap=True)

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
