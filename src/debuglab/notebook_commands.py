"""`debuglab notebook`: JupyterLab on 127.0.0.1 with a token, opened on labs/, with the
lab's kernel `debuglab` registered. Parsing and printing only (the work is in
debuglab.notebooks)."""

from __future__ import annotations

import secrets
from pathlib import Path

import click
from rich.console import Console

from debuglab import notebooks, proc
from debuglab.cloud import supervisor
from debuglab.kit import Kit
from debuglab.workspace import Workspace

console = Console(soft_wrap=True)


@click.command("notebook")
@click.option("--dir", "root", type=click.Path(path_type=Path), default=Path("lab"), show_default=True,
              help="The lab workspace.")
@click.option("--port", type=int, default=8888, show_default=True, help="JupyterLab's port on 127.0.0.1.")
@click.option("--token", default=None, help="The access token (default: a new random one).")
def notebook(root: Path, port: int, token: str | None) -> None:
    """Serve the notebooks (labs/) with JupyterLab on 127.0.0.1, with the lab's kernel."""
    ws = Workspace.open(root)
    kit = Kit.default()
    if not supervisor.port_free(port):
        raise notebooks.NotebookError(f"port {port} on 127.0.0.1 is in use; choose another with --port")
    kernel = notebooks.register_kernel(ws)
    argv, env, url = notebooks.jupyterlab_command(ws, kit, port, token or secrets.token_urlsafe(24))
    log = notebooks.jupyter_dir(ws) / "jupyterlab.log"
    console.print(f"kernel [bold]{notebooks.KERNEL_NAME}[/] (the lab venv): {kernel}", highlight=False)
    console.print(f"JupyterLab's log: {log}", highlight=False)
    console.print(f"open [bold]{url}[/]  (over SSH: ssh -L {port}:127.0.0.1:{port} <lab host>)", highlight=False)
    console.print("Ctrl-C stops it.")
    proc.run(argv, env=env, timeout=None, output_file=log)
