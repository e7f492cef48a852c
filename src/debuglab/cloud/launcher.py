"""The mini-cloud's service launcher. It runs under the LAB's python (never debuglab's):
`python launcher.py keystone <cloud-dir>` or `python launcher.py nova <cloud-dir>`.

It imports nothing from debuglab: everything it needs is in `<cloud-dir>/settings.json`,
written by debuglab.cloud.config. Two processes make the cloud:

- keystone: keystone's own WSGI application (`initialize_public_application`), its
  database synced, fernet keys and the bootstrap (users, projects, catalog) done in
  process, served by a threaded WSGI server.
- nova: on nova's threading backend, the API (`wsgi_app.init_application`, the stock
  api-paste.ini), conductor, scheduler and compute (`Service.create(...).start()`, the
  fake virt driver) and placement (its own app), sharing the in-memory `fake:/`
  message bus; glance and neutron stood in for by nova's own fixtures, with a small
  glance v2 endpoint over the glance fixture (images.py) so that clients can resolve,
  create and change images, and a read-only neutron v2.0 endpoint over the neutron
  fixture (neutron.py) so that they can name networks and list ports.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import socket
import socketserver
import sys
import threading
import time
from wsgiref import simple_server

LOG = logging.getLogger("debuglab.launcher")


# --------------------------------------------------------------------------- WSGI


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """One thread per request: a request stopped in a debugger blocks nobody else."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def process_request_thread(self, request, client_address):
        with_stack_room(super().process_request_thread, request, client_address)


# CPython 3.11 keeps a thread's Python frames in chunks of 16 KiB, allocates a chunk
# (mmap) when a call does not fit in the current one and frees it (munmap) when that
# call returns (python/cpython#142183; 3.13 and 3.14 got a fix in 2026, 3.11 and 3.12
# never will). A loop that calls a function right at a chunk's edge pays two syscalls
# and fresh pages per call:
# nova's API stack is deep enough that building each Instance object for
# GET /servers/detail sat on that edge and took 3x longer than the same code run
# shallow. A frame with STACK_ROOM_SLOTS unused locals makes the interpreter allocate
# a 256 KiB chunk for it; the request then runs in the ~17,000 free slots after it
# (some 500 frames deep) and never meets an edge. Cost: ~60 us per request thread.
STACK_ROOM_SLOTS = 15_400


def _stack_room_function():
    """with_stack_room(fn, *args) = fn(*args), from a frame of STACK_ROOM_SLOTS locals
    (assigned in a branch that never runs: they only have to exist)."""
    names = ", ".join(f"_{i}" for i in range(STACK_ROOM_SLOTS))
    source = f"def with_stack_room(fn, *args):\n    if fn is None:\n        {names} = ()\n    return fn(*args)\n"
    namespace: dict = {}
    exec(compile(source, "<debuglab stack room>", "exec"), namespace)
    return namespace["with_stack_room"]


with_stack_room = _stack_room_function()


class _Handler(simple_server.WSGIRequestHandler):
    logger = LOG

    def log_message(self, format, *args):  # noqa: A002 (stdlib's name)
        self.logger.info("%s %s", self.client_address[0], format % args)

    def get_environ(self):
        env = super().get_environ()
        # wsgiref drops nothing, but nova and keystone want a script name of ""
        env.setdefault("SCRIPT_NAME", "")
        return env


def _profiled(app, name: str):
    """With DEBUGLAB_PROFILE=<dir> (a kit developer's tool): every request of this app is
    run under cProfile (its own thread only) and its stats written to <dir>."""
    folder = os.environ.get("DEBUGLAB_PROFILE")
    if not folder:
        return app
    import cProfile
    import itertools

    counter = itertools.count(1)

    def profiled(environ, start_response):
        profile = cProfile.Profile()
        result = profile.runcall(lambda: list(app(environ, start_response)))
        path = environ.get("PATH_INFO", "").strip("/").replace("/", "_")[:60]
        os.makedirs(folder, exist_ok=True)
        profile.dump_stats(os.path.join(folder, f"{name}-{next(counter):04d}-{environ['REQUEST_METHOD']}-{path}.prof"))
        return result

    return profiled


def serve(app, port: int, name: str) -> _ThreadingWSGIServer:
    app = _profiled(_tag_wsgi_threads(app, name), name)
    handler = type(f"{name}Handler", (_Handler,), {"logger": logging.getLogger(f"debuglab.wsgi.{name}")})
    server = _ThreadingWSGIServer(("127.0.0.1", port), handler)
    server.set_app(app)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{name}", daemon=True)
    thread.start()
    LOG.info("%s listening on http://127.0.0.1:%d", name, port)
    return server


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")
            time.sleep(0.05)


def load_settings(cloud_dir: str) -> dict:
    with open(os.path.join(cloud_dir, "settings.json")) as fh:
        return json.load(fh)


def mark_ready(settings: dict, name: str) -> None:
    path = os.path.join(settings["cloud_dir"], f"{name}.ready")
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))


# --------------------------------------------------------------------------- debuggers


def setup_debugger(settings: dict) -> None:
    """The debugger chosen at `cloud start --debug`. breakpoint() opens a remote-pdb
    session of its own (breakpoints.py) unless debugpy, which has its own hook, is chosen."""
    debug = settings.get("debug") or {}
    kind = debug.get("kind")
    if kind != "debugpy":  # debugpy has its own breakpoint() hook
        first_port = int(settings.get("breakpoint_port") or 4444)  # the lab's own range
        _sibling("breakpoints").install(settings["cloud_dir"], first_port)
    if not kind:
        return
    port = int(debug["port"])
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


# --------------------------------------------------------------------------- keystone


def run_keystone(settings: dict) -> None:
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = settings["keystone"]["conf"]
    import oslo_service.backend as oslo_backend

    oslo_backend.init_backend(oslo_backend.BackendType.THREADING)
    _fernet_setup(settings)
    from keystone.server import wsgi as keystone_wsgi

    _sqlite_pooled_connections()
    app = keystone_wsgi.initialize_public_application()

    from keystone.common.sql import upgrades

    if not settings["keystone"].get("synced_marker") or not os.path.exists(settings["keystone"]["synced_marker"]):
        upgrades.offline_sync_database_to_version()
        open(settings["keystone"]["synced_marker"], "w").close()
    _keystone_bootstrap(settings)
    # concurrent clients wait for one another instead of getting 500 "database is locked"
    _sqlite_wal([os.path.join(settings["cloud_dir"], "keystone.sqlite")])
    _sqlite_transactions()
    serve(app, settings["ports"]["keystone"], "keystone")
    mark_ready(settings, "keystone")
    _wait_forever()


def _fernet_setup(settings: dict) -> None:
    """keystone-manage fernet_setup and credential_setup (before keystone loads its
    token provider, which wants the keys)."""
    from keystone.common import fernet_utils

    uid, gid = os.getuid(), os.getgid()
    for group, repository in (("fernet_tokens", settings["keystone"]["fernet_keys"]),
                              ("credential", settings["keystone"]["credential_keys"])):
        futils = fernet_utils.FernetUtils(repository, 3, group)
        if os.path.isdir(repository) and os.listdir(repository):
            continue
        futils.create_key_directory(uid, gid)
        if futils.validate_key_repository(requires_write=True):
            futils.initialize_key_repository(uid, gid)


def _keystone_bootstrap(settings: dict) -> None:
    """keystone-manage bootstrap's own logic, then the lab's users, projects and catalog.
    Idempotent: it runs at every start (so that changed ports reach the catalog)."""
    from keystone.cmd import bootstrap
    from keystone.common import driver_hints, provider_api
    from keystone import exception

    providers = provider_api.ProviderAPIs
    users = settings["users"]
    ports = settings["ports"]
    region = settings["region"]

    def bootstrapper():
        # keystone-manage's Bootstrapper, without its __init__'s second load_backends()
        # (the running application has loaded and locked them already)
        b = bootstrap.Bootstrapper.__new__(bootstrap.Bootstrapper)
        with mock_load_backends(bootstrap):
            b.__init__()
        return b

    boot = bootstrapper()
    boot.admin_username = "admin"
    boot.admin_password = users["admin"]
    boot.project_name = "admin"
    boot.admin_role_name = "admin"
    boot.region_id = region
    boot.service_name = "keystone"
    url = f"http://127.0.0.1:{ports['keystone']}/v3"
    boot.public_url = boot.internal_url = boot.admin_url = url
    boot.bootstrap()
    roles = {"admin": boot.admin_role_id, "member": boot.member_role_id, "service": boot.service_role_id,
             "reader": boot.reader_role_id}

    def grant(user_name: str, password: str, project_name: str, role_names: list[str]) -> str:
        b = bootstrapper()
        b.default_domain_id = boot.default_domain_id
        b.project_name = project_name
        b._bootstrap_project()
        b.admin_username = user_name
        b.admin_password = password
        b._bootstrap_admin_user()
        for role in role_names:
            try:
                providers.assignment_api.add_role_to_user_and_project(
                    user_id=b.admin_user_id, project_id=b.project_id, role_id=roles[role])
            except exception.Conflict:
                pass
        return b.project_id

    projects = {"admin": boot.project_id, "demo": grant("demo", users["demo"], "demo", ["member"])}
    grant("nova", users["nova"], "service", ["admin", "service"])
    grant("placement", users["placement"], "service", ["admin", "service"])
    _write_json(os.path.join(settings["cloud_dir"], PROJECTS_FILE), projects)

    catalog = providers.catalog_api
    for stype, name, port, path in (("compute", "nova", ports["nova"], "/v2.1"),
                                    ("placement", "placement", ports["placement"], ""),
                                    ("image", "glance", ports["image"], ""),
                                    ("network", "neutron", ports["network"], "")):
        endpoint_url = f"http://127.0.0.1:{port}{path}"
        hints = driver_hints.Hints()
        hints.add_filter("type", stype)
        services = catalog.list_services(hints)
        if services:
            service_id = services[0]["id"]
        else:
            import uuid

            service_id = uuid.uuid4().hex
            catalog.create_service(service_id, {"id": service_id, "name": name, "type": stype, "enabled": True})
        hints = driver_hints.Hints()
        hints.add_filter("service_id", service_id)
        existing = {e["interface"]: e for e in catalog.list_endpoints(hints)}
        for interface in ("public", "internal", "admin"):
            if interface in existing:
                if existing[interface]["url"] != endpoint_url:
                    ref = dict(existing[interface], url=endpoint_url)
                    catalog.update_endpoint(endpoint_id=ref["id"], endpoint_ref=ref)
                continue
            import uuid

            ref = {"id": uuid.uuid4().hex, "interface": interface, "url": endpoint_url,
                   "service_id": service_id, "enabled": True, "region_id": region}
            catalog.create_endpoint(endpoint_id=ref["id"], endpoint_ref=ref)


PROJECTS_FILE = "projects.json"  # Keystone's project ids by name, for the nova process


def _write_json(path: str, data) -> None:
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


# --------------------------------------------------------------------------- nova


class _FixtureHost:
    """What nova's GlanceFixture and NeutronFixture want from a test case: stub_out,
    flags and useFixture. The stubs stay for the life of the process."""

    def __init__(self):
        self._fixtures = []

    def useFixture(self, fixture):  # noqa: N802 (testtools' name)
        fixture.setUp()
        self._fixtures.append(fixture)
        return fixture

    def stub_out(self, old, new):
        import fixtures

        self.useFixture(fixtures.MonkeyPatch(old, new))

    def flags(self, **kw):
        import nova.conf

        group = kw.pop("group", None)
        for key, value in kw.items():
            nova.conf.CONF.set_override(key, value, group)


SERVICE_LOGGERS = {  # a line from no service's thread goes to the log of its logger's service
    "n-api": ("nova.api", "keystonemiddleware", "debuglab.wsgi.nova", "nova.policy"),
    "n-cond": ("nova.conductor",),
    "n-sch": ("nova.scheduler",),
    "n-cpu": ("nova.compute", "nova.virt", "nova.network"),
    "placement": ("placement", "debuglab.wsgi.placement"),
    "g-api": ("debuglab.wsgi.image",),
    "q-svc": ("debuglab.wsgi.network", "debuglab.network"),
}
WSGI_SERVICES = {"nova": "n-api", "placement": "placement", "image": "g-api", "network": "q-svc"}
RPC_SERVICES = {"nova-conductor": "n-cond", "nova-scheduler": "n-sch", "nova-compute": "n-cpu"}

_service_of_thread = threading.local()  # .name: the service whose request or RPC message this thread serves


class ServiceLogRouter(logging.Handler):
    """One log per service, as DevStack's journal has them (the process log holds all).

    In one process the logger's name does not say which service logged a line
    (nova.scheduler.utils runs in the conductor, nova.compute.api in the API), so a line
    goes to the service whose work the thread is doing: an API request (set by the WSGI
    server), an RPC message (set when the service deserializes the message's context), or
    a task spawned from one of those (nova's spawn_on carries the request context into the
    new thread, and the context carries the service's name). Other lines (periodic tasks,
    start-up) go by logger name. The lines have nova.log's format, request ids included."""

    def __init__(self, logs_dir: str, formatter: logging.Formatter):
        super().__init__()
        self.files = {}
        for service in SERVICE_LOGGERS:
            handler = logging.FileHandler(os.path.join(logs_dir, f"{service}.log"))
            handler.setFormatter(formatter)
            self.files[service] = handler

    @staticmethod
    def service(record: logging.LogRecord) -> str | None:
        name = getattr(_service_of_thread, "name", None)
        if name:
            return name
        from oslo_context import context as oslo_context

        name = getattr(oslo_context.get_current(), "debuglab_service", None)
        if name:
            return name
        for service, prefixes in SERVICE_LOGGERS.items():
            if record.name.startswith(prefixes):
                return service
        return None

    def handle(self, record: logging.LogRecord) -> bool:
        handler = self.files.get(self.service(record))
        if handler is not None:
            handler.handle(record)
        return True

    def emit(self, record):  # handle() does the work
        pass


def _per_service_logs(settings: dict) -> None:
    """The router, with the formatter of oslo.log's own handler (nova.conf's
    logging_context_format_string: `[req-… user project]`)."""
    from oslo_log import formatters

    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if isinstance(h.formatter, formatters.ContextFormatter)),
                     None)
    if formatter is None:  # oslo.log not set up (never so after init_global_data)
        import nova.conf

        formatter = formatters.ContextFormatter(project="nova", config=nova.conf.CONF)
    root.addHandler(ServiceLogRouter(settings["logs_dir"], formatter))


def _tag_wsgi_threads(app, name: str):
    service = WSGI_SERVICES.get(name)

    def tagged(environ, start_response):
        _service_of_thread.name = service  # a thread per request (ThreadingMixIn)
        return app(environ, start_response)

    return tagged


def _tag_rpc_threads(svc, service: str) -> None:
    """The thread that handles one of the service's RPC messages, and the message's
    context (which spawn_on hands on to the threads the handler starts), name the service."""
    for server in (svc.rpcserver, getattr(svc, "rpcserver_alt", None)):
        if server is None:
            continue
        serializer = server.dispatcher.serializer
        deserialize = serializer.deserialize_context

        def deserialize_context(ctxt, deserialize=deserialize):
            _service_of_thread.name = service
            context = deserialize(ctxt)
            try:
                context.debuglab_service = service
            except AttributeError:
                pass
            return context

        serializer.deserialize_context = deserialize_context


def run_nova(settings: dict) -> None:
    from nova import monkey_patch

    monkey_patch.patch(backend="threading")
    _sqlite_pooled_connections()

    nova_settings = settings["nova"]
    os.environ["OS_NOVA_CONFIG_DIR"] = nova_settings["conf_dir"]
    os.environ["OS_NOVA_CONFIG_FILES"] = f"{nova_settings['api_paste']};nova.conf"
    sys.argv = ["nova-api"]

    from nova.api.openstack import wsgi_app

    wsgi_app.init_global_data(wsgi_app._get_config_files(), "osapi_compute", "nova-api")
    _per_service_logs(settings)
    setup_debugger(settings)

    import nova.conf
    from nova import context, objects

    conf = nova.conf.CONF
    t0 = time.monotonic()
    first = not os.path.exists(nova_settings["prepared_marker"])
    if first:
        _prepare_nova_db(nova_settings)
    LOG.info("nova databases ready (%.1f s)", time.monotonic() - t0)

    placement_app = _placement_app(settings)
    _sqlite_wal(glob.glob(os.path.join(settings["cloud_dir"], "nova_*.sqlite"))
                + [os.path.join(settings["cloud_dir"], "placement.sqlite")])
    _sqlite_transactions()  # after the migrations, which manage their own transactions
    servers = [serve(placement_app, settings["ports"]["placement"], "placement")]

    host = _FixtureHost()
    from nova.tests import fixtures as nova_fixtures

    glance = host.useFixture(nova_fixtures.GlanceFixture(host))
    glance.images[CIRROS_ID]["name"] = CIRROS_NAME  # as DevStack names its one image
    neutron = host.useFixture(nova_fixtures.NeutronFixture(host))
    port_store = _sibling("network").PortStore(neutron, os.path.join(settings["cloud_dir"], "ports.json"))
    servers.append(serve(_image_app(settings, glance), settings["ports"]["image"], "image"))

    wait_for_port(settings["ports"]["keystone"], 120)  # after its bootstrap, which wrote PROJECTS_FILE
    servers.append(serve(_network_app(settings, neutron, port_store.lock), settings["ports"]["network"], "network"))

    from nova import service
    from nova.compute import rpcapi as compute_rpcapi

    objects.register_all()
    services = [
        service.Service.create(binary="nova-conductor", topic="conductor"),
        service.Service.create(binary="nova-scheduler", topic="scheduler"),
        service.Service.create(binary="nova-compute", topic=compute_rpcapi.RPC_TOPIC,
                               topic_alt=compute_rpcapi.RPC_TOPIC_ALT),
    ]
    for svc in services:
        svc.start()
        _tag_rpc_threads(svc, RPC_SERVICES[svc.binary])
    for svc in services:
        # heartbeat now, not after the servicegroup's initial delay: a server created
        # right after a restart would otherwise find the compute "not heard from"
        svc.servicegroup_api._driver._report_state(svc)
    if first:
        from nova.cmd import manage

        manage.CellV2Commands().discover_hosts()
        _default_flavors(context.get_admin_context())
        open(nova_settings["prepared_marker"], "w").close()

    app = wsgi_app.init_application("osapi_compute", "nova-api")
    _check_overrides(settings, conf, "nova.conf")
    servers.append(serve(app, settings["ports"]["nova"], "nova"))
    LOG.info("nova services up: n-api, n-cond, n-sch, n-cpu, placement, g-api, q-svc (host %s)", conf.host)
    mark_ready(settings, "nova")
    _wait_forever()


def _check_overrides(settings: dict, conf, file: str) -> None:
    """Say which of local.conf's options the service does not know (oslo.config ignores
    them silently: a typo would otherwise look like a setting that has no effect)."""
    from oslo_config import cfg

    for o in settings.get("overrides") or []:
        if o["file"] != file:
            continue
        try:
            getattr(conf if o["section"] == "DEFAULT" else getattr(conf, o["section"]), o["option"])
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
            LOG.warning("%s: [%s] %s is not an option of %s: it has no effect (a typo?)",
                        o["where"], o["section"], o["option"], file)
        else:
            LOG.info("%s: [%s] %s = %r (from local.conf)", o["where"], o["section"], o["option"],
                     getattr(conf if o["section"] == "DEFAULT" else getattr(conf, o["section"]), o["option"]))


def _prepare_nova_db(nova_settings: dict) -> None:
    """nova-manage's own commands, in process: api_db sync, map_cell0, create cell1, db sync."""
    from nova.cmd import manage

    manage.ApiDbCommands().sync()
    manage.CellV2Commands().map_cell0(database_connection=nova_settings["cell0_connection"])
    manage.DbCommands().sync(local_cell=False)
    rc = manage.CellV2Commands().create_cell(name="cell1")
    if rc not in (None, 0, 2):  # 2: a cell with that transport/db exists already
        raise RuntimeError(f"nova-manage cell_v2 create_cell failed ({rc})")


CIRROS_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # GlanceFixture.image1
CIRROS_NAME = "cirros-0.6.3-x86_64-disk"

def _sqlite_pooled_connections() -> None:
    """Keep SQLite connections open between transactions, as a MySQL deployment's pool
    does: oslo.db gives SQLite file databases a NullPool, so every transaction opened a
    new connection (five per `servers/detail`) and ran oslo.db's connect hooks again.
    Must run before the first engine is made."""
    from oslo_db.sqlalchemy import engines
    from sqlalchemy import pool

    registry = engines._init_connection_args.reg["sqlite"]["*"]  # oslo.db's functions for sqlite

    def pooled(url, engine_args, kw):
        if engine_args.get("poolclass") is pool.NullPool:
            engine_args["poolclass"] = pool.QueuePool
            engine_args["pool_size"] = 10
            engine_args["max_overflow"] = -1  # beyond 10, connections are closed on return
            engine_args.setdefault("connect_args", {})["check_same_thread"] = False

    registry.append(pooled)  # runs after oslo.db's own


def _sqlite_transactions() -> None:
    """SQLite transactions that cannot fail with 'database is locked'.

    A transaction of one of oslo.db's writer contexts begins with BEGIN IMMEDIATE (it
    takes the write lock at once, waiting up to 30 s for it): with oslo.db's deferred
    BEGIN, a read transaction that has to become a write one while another thread
    writes fails at once, SQLite cannot wait in that case. Reader contexts (which never
    write) keep the deferred BEGIN: in WAL mode they read a snapshot and wait for nobody,
    so an API listing is not queued behind 50 builds. Anything outside oslo.db's
    contexts is treated as a writer."""
    import contextlib

    from oslo_db.sqlalchemy import enginefacade
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    modes = threading.local()  # the stack of outermost transaction modes of this thread
    readers = (enginefacade._READER, enginefacade._ASYNC_READER)

    def tracking(method):
        original = getattr(enginefacade._TransactionContext, method)

        @contextlib.contextmanager
        def scope(self, savepoint=False, context=None):
            outermost = self.session is None and self.connection is None
            stack = modes.__dict__.setdefault("stack", [])
            if outermost:
                stack.append(self.mode)
            try:
                with original(self, savepoint, context) as resource:
                    yield resource
            finally:
                if outermost:
                    stack.pop()

        setattr(enginefacade._TransactionContext, method, scope)

    tracking("_session")
    tracking("_connection")

    @event.listens_for(Engine, "connect")
    def _connect(dbapi_connection, record):
        if type(dbapi_connection).__module__.startswith("sqlite3"):
            dbapi_connection.execute("PRAGMA busy_timeout = 30000")

    # runs before oslo.db's own per-engine "begin" listener, which emits a deferred BEGIN
    # unless conn.info says a transaction is open
    @event.listens_for(Engine, "begin")
    def _begin(connection):
        if connection.dialect.name != "sqlite" or "in_transaction" in connection.info:
            return
        stack = getattr(modes, "stack", None)
        if stack and stack[-1] in readers:
            return  # oslo.db's deferred BEGIN
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        connection.info["in_transaction"] = True


def _sqlite_wal(paths: list[str]) -> None:
    """Write-ahead logging on these databases: concurrent requests and builds then wait for
    one another instead of failing with 'database is locked'. Each process does its own:
    Keystone's may still be bootstrapping its database while nova starts."""
    import sqlite3

    for path in paths:
        conn = sqlite3.connect(path, timeout=30)
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()


FLAVORS = (  # DevStack's defaults
    ("m1.nano", "42", 128, 1, 1),
    ("m1.micro", "84", 192, 1, 1),
    ("m1.tiny", "1", 512, 1, 1),
    ("m1.small", "2", 2048, 20, 1),
    ("m1.medium", "3", 4096, 40, 2),
)


def _default_flavors(ctxt) -> None:
    from nova import exception, objects

    for name, flavorid, ram, disk, vcpus in FLAVORS:
        try:
            objects.Flavor(ctxt, name=name, flavorid=flavorid, memory_mb=ram, root_gb=disk, vcpus=vcpus,
                           ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True).create()
        except (exception.FlavorExists, exception.FlavorIdExists):
            pass


def _placement_app(settings: dict):
    """openstack-placement's own application, as placement.wsgi.init_application builds it
    (without its logging setup: the process has one already)."""
    from oslo_config import cfg
    from placement import conf as placement_conf, db_api, deploy
    from placement.db.sqlalchemy import migration
    from placement import wsgi as placement_wsgi

    config = cfg.ConfigOpts()
    placement_conf.register_opts(config)
    placement_wsgi._parse_args(config, [], default_config_files=[settings["placement"]["conf"]])
    db_api.configure(config)
    migration.upgrade("head")
    return deploy.loadapp(config)


def _sibling(name: str):
    """A module beside this file, loaded by path (the launcher imports nothing from
    debuglab, and this folder is not on the lab python's path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"debuglab_cloud_{name}",
                                                  os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                               f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _image_app(settings: dict, glance):
    """The image service (images.py) over nova's GlanceFixture, kept in the cloud's
    folder, tokens checked by keystonemiddleware with nova's [keystone_authtoken]."""
    from keystonemiddleware import auth_token

    images = _sibling("images")
    store = images.ImageStore(glance, os.path.join(settings["cloud_dir"], "images.json"),
                              os.path.join(settings["cloud_dir"], "images"))
    return images.make_app(store, settings["ports"]["image"], lambda app: auth_token.AuthProtocol(app, {}))


def _network_app(settings: dict, neutron, lock):
    """The network service (neutron.py) over nova's NeutronFixture, its network, subnets
    and security group given to the demo project (as DevStack creates `private` there),
    tokens checked by keystonemiddleware with nova's [keystone_authtoken]."""
    from keystonemiddleware import auth_token

    network = _sibling("neutron")
    with open(os.path.join(settings["cloud_dir"], PROJECTS_FILE)) as fh:
        projects = json.load(fh)
    with lock:
        network.give_to_project(neutron, projects["demo"])
    return network.make_app(network.FixtureView(neutron, lock), settings["ports"]["network"],
                            lambda app: auth_token.AuthProtocol(app, {}))


def _wait_forever() -> None:
    import signal

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


def main(argv: list[str]) -> None:
    kind, cloud_dir = argv[1], argv[2]
    settings = load_settings(cloud_dir)
    sys.argv = [f"debuglab-{kind}"]  # the services parse sys.argv as their command line
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    if kind == "keystone":
        run_keystone(settings)
    elif kind == "nova":
        run_nova(settings)
    else:
        raise SystemExit(f"unknown service {kind!r}")


if __name__ == "__main__":
    main(sys.argv)
