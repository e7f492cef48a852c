"""Starting, stopping and watching the mini-cloud: four background processes of the lab's
python (keystone; nova with placement; glance-api; neutron's API), a pidfile, one log per
service.

The core returns values and raises the typed errors of debuglab.cloud.errors; the CLI
(debuglab.cloud.commands) prints.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from debuglab.catalog.model import PROJECTS
from debuglab.cloud import config
from debuglab.cloud.config import CloudPaths, CloudSettings
from debuglab.cloud.errors import (
    CloudError,
    CloudNotRunning,
    CloudRunning,
    CloudStartFailed,
    CodeError,
    PortInUse,
)
from debuglab.core import proc, service
from debuglab.core.console import Step
from debuglab.core.errors import ProcError
from debuglab.core.processes import (
    alive,
    command_line,
    kill_session,
    listening,
    port_free,
    port_holder,
    session_members,
    wait_port_free,
)
from debuglab.lab import gitrepo, port_registry
from debuglab.lab.rebuild import RunningService
from debuglab.lab.workspace import Workspace

LAUNCHER = Path(__file__).with_name("launcher.py")
PROCESSES = ("keystone", "nova", "g-api", "q-svc")
PORT_NAMES = {"keystone": "Keystone", "nova": "nova API", "placement": "placement", "image": "glance API",
              "network": "neutron API"}
# run the launcher by path without putting this package's folder first on sys.path
_BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


@dataclass
class CloudState:
    """What the pidfile records about a running cloud."""

    pids: dict[str, int]
    ports: dict[str, int]
    debug: str | None = None
    debug_port: int | None = None
    started: float = field(default_factory=time.time)
    breakpoint_port: int | None = None

    @property
    def settings(self) -> CloudSettings:
        return CloudSettings(ports=dict(self.ports), debug=self.debug, debug_port=self.debug_port,
                             breakpoint_port=self.breakpoint_port)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    process: str
    pid: int | None
    port: int | None
    running: bool
    listening: bool | None  # None: the service has no port


# --------------------------------------------------------------------------- processes


def _is_ours(pid: int) -> bool:
    # a process that sets its title (setproctitle) has its argv as one string
    return str(LAUNCHER).encode() in b" ".join(command_line(pid))


# --------------------------------------------------------------------------- pidfile


def read_state(ws: Workspace) -> CloudState | None:
    """The running cloud's state, or None (a stale pidfile is removed)."""
    return service.read_state(CloudPaths(ws).pidfile, lambda data: CloudState(**data),
                              lambda state: any(alive(pid) and _is_ours(pid) for pid in state.pids.values()))


def _held_by(port: int, ws: Workspace) -> str:
    """", which the lab at X owns" when another lab of this machine holds the port."""
    owner = port_registry.holder(port)
    return f"; the lab at {owner} owns that port" if owner and owner != str(ws.root) else ""


def port_flag(name: str) -> str:
    """The command-line option that sets a service's port."""
    return "--port" if name == "nova" else f"--{name}-port"


def _options_path(paths: CloudPaths) -> Path:
    return paths.dir / "options.json"


def lab_settings(ws: Workspace) -> CloudSettings:
    """The lab's own ports (lab.toml), no debugger chosen."""
    owned = ws.ports
    return CloudSettings(ports={name: owned[name] for name in config.DEFAULT_PORTS},
                         breakpoint_port=owned["remote-pdb"])


def last_settings(ws: Workspace) -> CloudSettings:
    """The settings of the last start (ports, debugger), or the lab's own."""
    own = lab_settings(ws)
    data = service.read_options(_options_path(CloudPaths(ws)))
    try:
        ports = dict(own.ports, **data.get("ports", {}))
    except TypeError:  # an options file someone edited into another shape
        return own
    return CloudSettings(ports=ports, debug=data.get("debug"), debug_port=data.get("debug_port"),
                         breakpoint_port=data.get("breakpoint_port") or own.breakpoint_port)


# --------------------------------------------------------------------------- checks


def check_code(ws: Workspace) -> list[str]:
    """Compile every python file the student changed in the lab's checkouts (lab python);
    raise CodeError naming file and line. Returns the files checked."""
    files: list[str] = []
    for project in PROJECTS:
        checkout = ws.checkout(project)
        if not (checkout / ".git").exists():
            continue
        try:
            out = gitrepo.git(checkout, "status", "--porcelain", "--untracked-files=all")
        except ProcError:
            continue
        for line in out.splitlines():
            path = line[3:].split(" -> ")[-1].strip().strip('"')
            if path.endswith(".py") and (checkout / path).is_file():
                files.append(str(checkout / path))
    if not files:
        return files
    script = ("import sys\nbad = 0\nfor f in sys.argv[1:]:\n"
              "    try:\n        compile(open(f, 'rb').read(), f, 'exec')\n"
              "    except SyntaxError as e:\n"
              "        bad = 1\n        print(f'{e.filename}:{e.lineno}: {e.__class__.__name__}: {e.msg}')\n"
              "        if e.text: print('    ' + e.text.rstrip())\n"
              "sys.exit(bad)\n")
    result = proc.run([ws.python, "-c", script, *files], check=False, timeout=120)
    if result.returncode != 0:
        raise CodeError(f"your edited code does not compile, so the cloud was not started:\n"
                        f"{result.output.rstrip()}\nfix it, then `debuglab cloud start`")
    return files


# --------------------------------------------------------------------------- start / stop


def start(ws: Workspace, *, ports: dict[str, int] | None = None, debug: str | None = None,
          debug_port: int | None = None, timeout: float = 180, on_step: Step = lambda t: None) -> CloudState:
    """Start keystone, nova, glance and neutron; return once every service answers."""
    paths = CloudPaths(ws)
    _clear_the_way(ws, on_step)
    settings = _settings_for_start(ws, ports, debug, debug_port)
    _check_ports(ws, settings)
    on_step("checking your edits compile")
    check_code(ws)
    on_step("writing the configuration")
    config.write_all(paths, settings)
    service.write_json(_options_path(paths), {"ports": settings.ports, "debug": settings.debug,
                                              "debug_port": settings.debug_port,
                                              "breakpoint_port": settings.breakpoint_port})
    on_step("starting Keystone, nova, glance and neutron")
    return _spawn_and_wait(ws, paths, settings, timeout, on_step)


def _clear_the_way(ws: Workspace, on_step: Step) -> None:
    """Refuse to start over a running cloud; stop what is left of a half-dead one."""
    running = read_state(ws)
    if running is not None and all(alive(pid) for pid in running.pids.values()):
        raise CloudRunning(f"the cloud already runs in {ws.root} (pids {_pids_text(running)}); "
                           "nothing was started. `debuglab cloud restart` reloads your code.")
    if running is not None:  # half of it died (kill -9, a crash): the rest goes, then a clean start
        on_step(f"stopping what is left of the cloud ({_pids_text(running)})")
        stop(ws)


def _settings_for_start(ws: Workspace, ports: dict[str, int] | None, debug: str | None,
                        debug_port: int | None) -> CloudSettings:
    """The ports and debugger of this start: what is asked, else the last start's, else the lab's own."""
    if debug and debug not in config.DEBUG_KINDS:
        raise CloudError(f"unknown debugger {debug!r}; choose one of {', '.join(config.DEBUG_KINDS)}")
    previous = last_settings(ws)
    owned = ws.ports
    # the lab's own ports for its debugger; --debug-port without --debug moves breakpoint()'s range
    chosen = (debug_port or owned.get(debug, config.DEFAULT_DEBUG_PORTS.get(debug))) if debug else None
    pdb_first = debug_port if debug in (None, "remote-pdb") and debug_port else previous.breakpoint_port
    return CloudSettings(ports=dict(previous.ports, **(ports or {})), debug=debug, debug_port=chosen,
                         breakpoint_port=pdb_first or owned["remote-pdb"])


def _check_ports(ws: Workspace, settings: CloudSettings) -> None:
    """Every service's port distinct and free, and breakpoint()'s first port free."""
    used = {}
    for name, port in settings.ports.items():
        if port in used:
            raise PortInUse(f"port {port} is given to both {PORT_NAMES[used[port]]} and {PORT_NAMES[name]}")
        used[port] = name
    for name, port in settings.ports.items():
        if not wait_port_free(port, 2):
            raise PortInUse(f"port {port} on 127.0.0.1 ({PORT_NAMES[name]}) is in use by another program"
                            f"{port_holder(port)}{_held_by(port, ws)}; stop it, or start the cloud on other "
                            f"ports ({port_flag(name)} N)")
    if not port_free(settings.pdb_port):
        raise PortInUse(f"port {settings.pdb_port} on 127.0.0.1 (remote-pdb, for breakpoint()) is in use"
                        f"{_held_by(settings.pdb_port, ws)}; choose --debug-port N")
    # a free port may still be another lab's: its breakpoint() would open there later
    wanted = {settings.debug_port} if settings.debug_port else set()
    wanted |= set(range(settings.pdb_port, settings.pdb_port + port_registry.PDB_RANGE))
    for port in sorted(wanted):
        owner = port_registry.holder(port)
        if owner and owner != str(ws.root):
            raise PortInUse(f"port {port} (the debugger's) belongs to the lab at {owner}; leave out --debug-port "
                            f"(this lab's own: {ws.ports['remote-pdb']}) or choose one no other lab owns")


def _spawn_and_wait(ws: Workspace, paths: CloudPaths, settings: CloudSettings, timeout: float,
                    on_step: Step) -> CloudState:
    """One process per service, the pidfile, then wait until each says it is ready; on any
    failure (or Ctrl-C) every process started is stopped and the pidfile removed."""
    for name in PROCESSES:
        (paths.dir / f"{name}.ready").unlink(missing_ok=True)
    env = _service_env(ws, settings)
    offsets: dict[str, int] = {}
    children: dict[str, subprocess.Popen] = {}
    try:
        for name in PROCESSES:
            children[name], offsets[name] = service.spawn(
                [str(ws.python), "-c", _BOOT, str(LAUNCHER), name, str(paths.dir)],
                log=paths.log(name), title="cloud start", cwd=paths.dir, env=env)
        state = CloudState(pids={n: c.pid for n, c in children.items()}, ports=settings.ports,
                           debug=settings.debug, debug_port=settings.debug_port,
                           breakpoint_port=settings.breakpoint_port)
        service.write_state(paths.pidfile, state)
        _wait_ready(paths, children, offsets, timeout, on_step)
    except BaseException:
        for child in children.values():
            kill_session(child.pid, timeout=5)
            child.wait()
        paths.pidfile.unlink(missing_ok=True)
        raise
    return state


def _service_env(ws: Workspace, settings: CloudSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OS_", "PYTHON", "VIRTUAL_ENV", "REMOTE_PDB"))}
    env.update({
        "VIRTUAL_ENV": str(ws.venv),
        "PATH": f"{ws.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        "OS_NOVA_DISABLE_EVENTLET_PATCHING": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONBREAKPOINT": "remote_pdb.set_trace",
        "REMOTE_PDB_HOST": "127.0.0.1",
        "REMOTE_PDB_PORT": str(settings.pdb_port),
    })
    if settings.debug == "debugpy":
        env.pop("PYTHONBREAKPOINT")  # debugpy installs its own breakpoint hook
    return env


def _wait_ready(paths: CloudPaths, children: dict[str, subprocess.Popen], offsets: dict[str, int],
                timeout: float, on_step: Step) -> None:
    deadline = time.monotonic() + timeout
    pending = set(children)
    while pending:
        for name in list(pending):
            if (paths.dir / f"{name}.ready").exists():
                pending.discard(name)
                on_step(f"{name} is up")  # each one named, whichever comes up last
                continue
            code = children[name].poll()
            if code is not None:
                raise CloudStartFailed(f"{name} exited (code {code}) while starting; from "
                                       f"{paths.log(name)}:\n{service.log_excerpt(paths.log(name), offsets[name])}")
        if time.monotonic() > deadline:
            slow = ", ".join(sorted(pending))
            raise CloudStartFailed(f"{slow} did not come up in {timeout:.0f} s; the end of its log:\n"
                                   + "\n".join(service.log_excerpt(paths.log(n), offsets[n]) for n in sorted(pending)))
        time.sleep(0.05)
    on_step(f"all services are up ({', '.join(children)})")


def stop(ws: Workspace, timeout: float = 10) -> CloudState | None:
    """Stop every process of the cloud (and anything they started); None if none ran."""
    paths = CloudPaths(ws)
    state = read_state(ws)
    if state is None:
        return None
    for name, pid in state.pids.items():
        if _is_ours(pid) or not alive(pid):
            kill_session(pid, timeout)
    paths.pidfile.unlink(missing_ok=True)
    return state


def restart(ws: Workspace, *, ports: dict[str, int] | None = None, debug: str | None | bool = False,
            debug_port: int | None = None, timeout: float = 180, on_step: Step = lambda t: None) -> CloudState:
    """Stop (if running) and start again with the student's current code. `debug=False`
    keeps the last start's debugger; None turns it off."""
    previous = read_state(ws)
    last = previous.settings if previous else last_settings(ws)
    on_step("stopping the cloud")
    stop(ws)
    if debug is False:
        debug, debug_port = last.debug, debug_port or last.debug_port
    return start(ws, ports=ports, debug=debug, debug_port=debug_port, timeout=timeout, on_step=on_step)


def reset(ws: Workspace) -> None:
    """Stop the cloud and throw its state away (databases, keys, logs)."""
    import shutil

    stop(ws)
    paths = CloudPaths(ws)
    shutil.rmtree(paths.dir, ignore_errors=True)


# --------------------------------------------------------------------------- status / logs


def status(ws: Workspace) -> list[ServiceStatus]:
    state = read_state(ws)
    settings = state.settings if state else last_settings(ws)
    rows = []
    for name, spec in config.SERVICES.items():
        pid = state.pids.get(spec["process"]) if state else None
        running = bool(pid and alive(pid))
        port = settings.ports[spec["port"]] if spec["port"] else None
        rows.append(ServiceStatus(name, spec["process"], pid if running else None, port, running,
                                  (listening(port) if running else False) if port else None))
    return rows


def services_running_file(ws: Workspace, path: str) -> tuple[str, list[str]]:
    """(the file relative to its project, the services that run its code)."""
    p = Path(path)
    if p.is_absolute():
        for project in ("nova",):
            try:
                p = p.resolve().relative_to(ws.checkout(project).resolve())
                break
            except ValueError:
                continue
    rel = p.as_posix().lstrip("./")
    best, services = 0, []
    for name, spec in config.SERVICES.items():
        for prefix in spec["code"]:
            if rel.startswith(prefix):
                if len(prefix) > best:
                    best, services = len(prefix), [name]
                elif len(prefix) == best:
                    services.append(name)
    if not services and rel.startswith("nova/"):
        services = ["n-api", "n-cond", "n-sch", "n-cpu"]  # shared code (objects, db, utils...)
    if not services:
        raise CloudError(f"{path}: not code any service of the mini-cloud runs "
                         "(give a path inside stack/nova, e.g. nova/scheduler/manager.py)")
    return rel, services


LOG_NAMES = ("keystone", "nova", "n-api", "n-cond", "n-sch", "n-cpu", "placement", "g-api", "q-svc")


def logs(ws: Workspace, service: str = "nova", lines: int = 50) -> str:
    if service not in LOG_NAMES:
        raise CloudError(f"no log called {service!r}; choose one of {', '.join(LOG_NAMES)}")
    path = CloudPaths(ws).log(service)
    if not path.exists():
        raise CloudNotRunning(f"{path}: no log yet; start the cloud with `debuglab cloud start`")
    return service.log_tail(path, lines)


def memory_mib(ws: Workspace) -> float:
    """Resident memory of every process of the running cloud, in MiB (0 when it is stopped)."""
    state = read_state(ws)
    total_kib = 0
    for leader in (state.pids.values() if state else ()):
        for pid in session_members(leader):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


def _pids_text(state: CloudState) -> str:
    return ", ".join(f"{name} {pid}" for name, pid in state.pids.items())


CARRIED = RunningService(  # what `lab create --force` stops and starts again
    "cloud", read_state, stop,
    lambda ws, state: start(ws, ports=state.ports, debug=state.debug, debug_port=state.debug_port))
