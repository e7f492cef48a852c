"""A lab host's state in one JSON line: `<kit venv>/bin/python -m debuglab.provision.labside LAB`
(or, `--devstack STACK_DIR`, the JupyterLab of a DevStack host).

Run on the host with the kit's venv (which provisioning installs), so that a second
provisioning run learns everything in one SSH round: the lab's bugs and baselines,
whether its mini-cloud runs and on which ports, and JupyterLab's URL. Read only: the
cloud and JupyterLab are started with the `debuglab cloud` / `debuglab notebook` commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cloud_state(root: Path) -> dict:
    from debuglab.cloud import config, supervisor
    from debuglab.lab.workspace import Workspace

    ws = Workspace(root)
    state = supervisor.read_state(ws)
    if state is None:
        return {"running": False}
    settings = state.settings
    paths = config.CloudPaths(ws)
    return {"running": True, "pids": state.pids, "ports": settings.ports,
            "endpoints": {name: settings.endpoint(name) for name in settings.ports},
            "openrc": str(paths.openrc), "clouds_yaml": str(paths.clouds_yaml),
            "debug": settings.debug, "debug_port": settings.debug_port}


def notebook_state(root: Path, *, devstack: bool = False) -> dict:
    """JupyterLab of the lab at `root`, or (devstack) of the DevStack host whose stack is `root`."""
    from debuglab.lab.workspace import Workspace
    from debuglab.notebooks import jupyterlab
    from debuglab.notebooks.devstack import DevstackSite

    ws = DevstackSite.open(root) if devstack else Workspace(root)
    found = jupyterlab.read_state(ws)
    if found is None:
        return {"running": False}
    return {"running": True, "pid": found.pid, "port": found.port, "url": jupyterlab.url(ws, found.port)}


def state(root: Path) -> dict:
    import tomllib

    lab_toml = root / "lab.toml"
    if not lab_toml.is_file():
        return {"lab": None, "cloud": {"running": False}, "notebook": {"running": False}}
    try:
        info = tomllib.loads(lab_toml.read_text())
        lab = {"bugs": sorted(info["lab"]["bugs"]),
               "baseline": {p: e["baseline_commit"] for p, e in info["projects"].items()},
               "python": info.get("venv", {}).get("python")}
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        lab = {"bugs": None, "error": f"unreadable lab.toml: {exc}"}
    return {"lab": lab, "cloud": cloud_state(root), "notebook": notebook_state(root)}


def main(argv: list[str]) -> int:
    import os

    devstack = argv[0] == "--devstack"
    root = Path(os.path.expanduser(argv[-1])).absolute()
    try:
        answer = {"notebook": notebook_state(root, devstack=True)} if devstack else state(root)
    except Exception as exc:  # an answer the controller can show, not a traceback on a VM
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    return 0 if "error" not in answer else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
