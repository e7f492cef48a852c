"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from pathlib import Path

import click

LAB_DIR = click.option("--dir", "root", type=click.Path(path_type=Path), default=Path("lab"), show_default=True,
                       help="The lab workspace.")
