"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path

import click

LAB_DIR = click.option("--dir", "root", type=click.Path(path_type=Path), default=Path("lab"), show_default=True,
                       help="The lab workspace.")

# the kit's numbers: a bad one is bad input (exit 2, click names the option), never a traceback
PORT = click.IntRange(1, 65535)  # a TCP port
WORKERS = click.IntRange(min=1)  # workers, lines: at least one
SECONDS = click.FloatRange(min=0, min_open=True)  # a timeout: more than no time at all
WAIT = click.FloatRange(min=0)  # a wait: none (0) or some
