"""What a student needs to reach a debugger in the running cloud: where remote-pdb
listens, PyCharm's path mappings, VS Code's launch.json (debugpy)."""

from __future__ import annotations

import json
from shlex import quote

from debuglab.cloud.config import CloudPaths, CloudSettings
from debuglab.lab.workspace import Workspace


def launch_json(ws: Workspace, port: int) -> dict:
    """A VS Code attach configuration for debugpy. justMyCode is off: to debugpy nova is
    a library (it lives in site-packages' editable install), not the student's own code."""
    nova = str(ws.checkout("nova"))
    return {
        "version": "0.2.0",
        "configurations": [{
            "name": "Attach to the debuglab mini-cloud (nova)",
            "type": "debugpy",
            "request": "attach",
            "connect": {"host": "127.0.0.1", "port": port},
            "justMyCode": False,
            # keep the other threads (other requests, the services) running while one
            # request is stopped; debugpy otherwise suspends every thread
            "stopAllThreadsOnSuspend": False,
            "pathMappings": [{"localRoot": nova, "remoteRoot": nova}],
        }],
    }


def pycharm_mappings(ws: Workspace) -> list[tuple[str, str]]:
    """(local path, path in the service): the same folder on one machine; on a class VM
    the local side is the student's copy of stack/nova."""
    nova = str(ws.checkout("nova"))
    return [(nova, nova)]


def instructions(ws: Workspace, settings: CloudSettings) -> str:
    """The few lines that say how to attach the chosen debugger."""
    paths = CloudPaths(ws)
    kind, port = settings.debug, settings.debug_port
    if kind == "remote-pdb" or kind is None:
        port = settings.pdb_port
        text = (f"breakpoint() anywhere in stack/nova opens remote-pdb on 127.0.0.1:{port} "
                f"(the log says when; a breakpoint reached while another waits takes the next free port, "
                f"up to {port + 9}); connect with `debuglab attach --dir {quote(str(ws.root))}` (the oldest waiting "
                "session; `--list` shows them all). Other requests keep being served while one is stopped.")
        if kind is None:  # the default: say what the other choices would change
            text += (" `--debug pycharm` would also connect nova to PyCharm's debug server; "
                     "`--debug debugpy` would hand breakpoint() to VS Code instead.")
        return text
    if kind == "pycharm":
        local, remote = pycharm_mappings(ws)[0]
        return (f"PyCharm: run a 'Python Debug Server' configuration on 127.0.0.1 port {port} BEFORE "
                f"starting the cloud; the nova process connects to it at start (see {paths.log('nova')}). "
                f"Path mappings: {local} = {remote}")
    if kind == "debugpy":
        target = paths.dir / "vscode-launch.json"
        target.write_text(json.dumps(launch_json(ws, port), indent=2) + "\n")
        return (f"VS Code: debugpy listens on 127.0.0.1:{port}; attach with this launch.json "
                f"(also in {target}); breakpoint() does nothing until VS Code is attached:\n"
                + json.dumps(launch_json(ws, port), indent=2))
    return ""
