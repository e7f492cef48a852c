"""What each service process of the cloud shares: its settings, the ready marker, the debugger
chosen at `cloud start --debug`, one log per service, and waiting for SIGTERM.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from . import breakpoints
from .settings import LauncherSettings
from .wsgi import wait_for_port

LOG = logging.getLogger("debuglab.launcher")


def load_settings(cloud_dir: str) -> LauncherSettings:
    with open(os.path.join(cloud_dir, "settings.json")) as fh:
        return LauncherSettings.from_json(fh.read())


def mark_ready(settings: LauncherSettings, name: str) -> None:
    path = os.path.join(settings.cloud_dir, f"{name}.ready")
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))


def setup_debugger(settings: LauncherSettings) -> None:
    """The debugger chosen at `cloud start --debug`. breakpoint() opens a remote-pdb
    session of its own (breakpoints.py) unless debugpy, which has its own hook, is chosen."""
    kind = settings.debug.kind if settings.debug else None
    if kind != "debugpy":  # debugpy has its own breakpoint() hook
        breakpoints.install(settings.cloud_dir, settings.breakpoint_port)  # the lab's own range
    if not kind:
        return
    port = settings.debug.port
    if kind == "remote-pdb":
        LOG.warning("debugger: breakpoint() opens remote-pdb on 127.0.0.1:%d (the next free port up to "
                    "%d when sessions wait already); connect with `debuglab attach` (or telnet 127.0.0.1 %d)",
                    port, port + 9, port)
    elif kind == "pycharm":
        import pydevd_pycharm

        LOG.warning("debugger: connecting to PyCharm's debug server on 127.0.0.1:%d", port)
        try:
            pydevd_pycharm.settrace("127.0.0.1", port=port, suspend=False, stdout_to_server=False,
                                    stderr_to_server=False, trace_only_current_thread=False)
        except OSError as exc:
            LOG.error("debugger: no PyCharm debug server listens on 127.0.0.1:%d (%s); in PyCharm start "
                      "the 'Python Debug Server' run configuration on that port, then `debuglab cloud "
                      "restart --debug pycharm`. Nova runs on without a debugger.", port, exc)
            return
        LOG.warning("debugger: connected to PyCharm on 127.0.0.1:%d; set breakpoints in PyCharm", port)
    elif kind == "debugpy":
        import debugpy

        # subProcess=False: pydevd would otherwise wrap every python the process spawns,
        # the adapter relisten() starts included, in a debuggee of the dead adapter
        debugpy.configure(subProcess=False)
        debugpy.listen(("127.0.0.1", port))
        threading.Thread(target=_keep_debugpy_listening, args=(port,), name="debugpy-relisten",
                         daemon=True).start()
        LOG.warning("debugger: debugpy listens on 127.0.0.1:%d; attach VS Code to it "
                    "(breakpoint() does nothing until an IDE is attached)", port)


def _keep_debugpy_listening(port: int, interval: float = 0.5) -> None:
    """Listen again when debugpy's adapter is gone. The adapter (a process of its own)
    exits when a client closes its socket before a reply was written (a `disconnect`
    whose reply the client did not wait for, an IDE killed); pydevd then disposes of
    itself and nothing listens on the port until a restart. debugpy.listen() refuses a
    second call (`listen.called`), which guards against two live adapters: with pydevd
    gone there is none, so the guard is reset and a new adapter started."""
    import debugpy
    import pydevd
    from debugpy.server import api as debugpy_api

    threading.current_thread().pydev_do_not_trace = True
    while True:
        time.sleep(interval)
        if pydevd.get_global_debugger() is not None:
            continue
        LOG.warning("debugger: debugpy's adapter went away (a client closed its connection without "
                    "waiting for the reply); listening again on 127.0.0.1:%d", port)
        debugpy_api.listen.called = False
        try:
            debugpy.listen(("127.0.0.1", port))
        except Exception as exc:  # noqa: BLE001 (say it, try again)
            LOG.error("debugger: debugpy cannot listen again on 127.0.0.1:%d (%s); "
                      "`debuglab cloud restart --debug debugpy` brings it back", port, exc)
            time.sleep(5)
        else:
            LOG.warning("debugger: debugpy listens on 127.0.0.1:%d again", port)


def write_json(path: str, data) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class mock_load_backends:  # noqa: N801 (a context manager)
    def __init__(self, module):
        self.module = module

    def __enter__(self):
        self.saved = self.module.backends.load_backends
        self.module.backends.load_backends = lambda: None

    def __exit__(self, *exc):
        self.module.backends.load_backends = self.saved


def admin_session(settings: LauncherSettings):
    """A keystoneauth session of DevStack's admin (admin project), as `source openrc admin admin`."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=f"http://127.0.0.1:{settings.ports['keystone']}/v3", username="admin",
                       password=settings.users["admin"], project_name="admin", user_domain_name="Default",
                       project_domain_name="Default")
    return session.Session(auth=auth)


def wait_forever() -> None:
    import gc
    import signal

    # what start-up made lives as long as the process: out of the collector's way, so that
    # a full collection (which a request's allocations trigger) walks only what requests make
    gc.collect()
    gc.freeze()

    stop = threading.Event()

    def on_term(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    while not stop.is_set():
        stop.wait(1)
    LOG.info("stopping (signal)")
    logging.shutdown()
    os._exit(0)


def serve_until_stopped(settings: LauncherSettings, name: str, *, first: bool = False, marker: str | None = None,
                        first_start=None) -> None:
    """How every service's start ends, once its servers listen: at its first start, when
    Keystone answers, `first_start(settings)` fills it (DevStack's image, networks) and
    `marker` records that it was done; then the ready marker the supervisor waits for, and
    serving until SIGTERM."""
    if first and first_start is not None:
        wait_for_port(settings.ports["keystone"], 120)
        first_start(settings)
        open(marker, "w").close()
    mark_ready(settings, name)
    wait_forever()
