"""The mini-cloud's service launcher. It runs under the LAB's python (never debuglab's):
`python launcher.py keystone|nova|g-api|q-svc <cloud-dir>`.

It imports nothing from debuglab: everything it needs is in `<cloud-dir>/settings.json`,
written by debuglab.cloud.config. Four processes make the cloud, each served by a
threaded WSGI server on 127.0.0.1:

- keystone: keystone's own WSGI application (`initialize_public_application`), its
  database synced, fernet keys and the bootstrap (users, projects, catalog) done in
  process.
- nova: on nova's threading backend, the API (`wsgi_app.init_application`, the stock
  api-paste.ini), conductor, scheduler and compute (`Service.create(...).start()`, the
  fake virt driver) and placement (its own app), sharing the in-memory `fake:/`
  message bus. nova reaches glance and neutron over HTTP with its own clients.
- g-api: glance-api's WSGI application (`glance.common.wsgi_app.init_app`), SQLite and
  the file store in the cloud's folder; DevStack's cirros image at the first start.
- q-svc: neutron's API (`neutron.server.boot_server(api_server)`), ML2 with flat and
  local networks and an agentless mechanism driver (ml2.py); DevStack's `public`,
  `private` and `router1` at the first start.
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
        in_stack_room(super().process_request_thread, request, client_address)


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
    # a chained assignment (`_0 = _1 = ... = None`) makes the locals with a value stack of
    # 2 slots; an unpacking (`_0, _1, ... = ()`) needed one slot per name on the value
    # stack, which doubled the frame and left ~1,900 free slots in the chunk, not ~17,000
    names = " = ".join(f"_{i}" for i in range(STACK_ROOM_SLOTS))
    source = f"def with_stack_room(fn, *args):\n    if fn is None:\n        {names} = None\n    return fn(*args)\n"
    namespace: dict = {}
    exec(compile(source, "<debuglab stack room>", "exec"), namespace)
    return namespace["with_stack_room"]


with_stack_room = _stack_room_function()
_room = threading.local()  # .given: this thread runs above a room frame already


def in_stack_room(fn, *args):
    """fn(*args) above a room frame, unless the thread has one: a second room in the same
    chunk would leave only ~1,900 free slots above it, and the request met the edge again."""
    if getattr(_room, "given", False):
        return fn(*args)
    _room.given = True
    try:
        return with_stack_room(fn, *args)
    finally:
        _room.given = False


def stack_room_for_every_thread() -> None:
    """Every thread started from now on runs above a stack-room frame, not only the WSGI
    servers' request threads: nova lists instances in its cell scatter-gather pool's
    threads and builds in the compute's, whose shallow stacks met the chunk edge at a depth
    that moved with the code (a planted bug, a student's edit). A fresh lab measured
    ~3,000 mmap+munmap calls per `servers/detail` of 47 servers with the room in request
    threads only."""
    run = threading.Thread.run

    def run_with_room(self):
        in_stack_room(run, self)

    threading.Thread.run = run_with_room


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


class _Dechunked:
    """A request body sent with `Transfer-Encoding: chunked` (glanceclient uploads image
    data so, nova's snapshots included), as the file-like `wsgi.input` that uWSGI gives
    glance: read() returns the data without the chunk framing, then b"" at the end."""

    def __init__(self, stream):
        self.stream = stream
        self.left = 0  # bytes left in the current chunk
        self.done = False

    def _next_chunk(self) -> None:
        if self.left == 0 and not self.done:
            size_line = self.stream.readline(1024)
            self.left = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if self.left == 0:
                self.done = True
                while self.stream.readline(1024).strip():  # trailers, up to the blank line
                    pass

    def read(self, size: int = -1) -> bytes:
        out = []
        while (size < 0 or size > 0) and not self.done:
            self._next_chunk()
            if self.done:
                break
            n = self.left if size < 0 else min(size, self.left)
            data = self.stream.read(n)
            if not data:
                raise ConnectionError("the client closed a chunked request body in the middle of a chunk")
            out.append(data)
            self.left -= len(data)
            size = size - len(data) if size > 0 else size
            if self.left == 0:
                self.stream.readline(8)  # the CRLF after the chunk's data
        return b"".join(out)

    def readline(self, size: int = -1) -> bytes:
        line = []
        while not line or line[-1] != b"\n":
            byte = self.read(1)
            if not byte:
                break
            line.append(byte)
            if 0 < size <= len(line):
                break
        return b"".join(line)

    def __iter__(self):
        return iter(self.readline, b"")


def _chunked_bodies(app):
    def dechunking(environ, start_response):
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            environ["wsgi.input"] = _Dechunked(environ["wsgi.input"])
            environ["wsgi.input_terminated"] = True
            environ.pop("CONTENT_LENGTH", None)
        return app(environ, start_response)

    return dechunking


JSON_BODY_LIMIT = 114688  # oslo.middleware's max_request_body_size, which nova's paste pipeline applies


def json_body_limit(app):
    """413 for a JSON body over JSON_BODY_LIMIT, as nova's `sizelimit` filter answers:
    glance and neutron have no such filter in their paste pipelines and answer a 20 MB
    image name with a 40 MB error page that quotes it. Image data (octet-stream) is not
    limited. The body is read to its end first, so that the client sees the answer."""

    def limited(environ, start_response):
        kind = environ.get("CONTENT_TYPE", "")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if "json" in kind and length > JSON_BODY_LIMIT:
            stream, left = environ["wsgi.input"], length
            while left > 0:
                chunk = stream.read(min(left, 1 << 16))
                if not chunk:
                    break
                left -= len(chunk)
            body = f"Request is too large: a JSON body may have at most {JSON_BODY_LIMIT} bytes.\n".encode()
            start_response("413 Request Entity Too Large",
                           [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return limited


def serve(app, port: int, name: str) -> _ThreadingWSGIServer:
    app = _profiled(_tag_wsgi_threads(_chunked_bodies(app), name), name)
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
    for service_user in ("nova", "placement", "glance", "neutron"):
        grant(service_user, users[service_user], "service", ["admin", "service"])
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


SERVICE_LOGGERS = {  # a line from no service's thread goes to the log of its logger's service
    "n-api": ("nova.api", "keystonemiddleware", "debuglab.wsgi.nova", "nova.policy"),
    "n-cond": ("nova.conductor",),
    "n-sch": ("nova.scheduler",),
    "n-cpu": ("nova.compute", "nova.virt", "nova.network"),
    "placement": ("placement", "debuglab.wsgi.placement"),
}
WSGI_SERVICES = {"nova": "n-api", "placement": "placement"}
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

    _fake_host(settings)
    wait_for_port(settings["ports"]["keystone"], 120)  # after its bootstrap: nova-compute's start asks for tokens

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
    LOG.info("nova services up: n-api, n-cond, n-sch, n-cpu, placement (host %s)", conf.host)
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


CIRROS_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # the id nova's own tests give their first image
CIRROS_NAME = "cirros-0.6.3-x86_64-disk"  # as DevStack names the one image it uploads
CIRROS_VIRTUAL_SIZE = 117440512  # 112 MiB, as cirros 0.6.3's disk

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


# --------------------------------------------------------------------------- the fake host


def _fake_host(settings: dict) -> None:
    """What a DevStack host gives that nova's fake driver does not: the host's uptime (the
    libvirt driver runs `uptime`), a console log as long as a cirros boot's, and a snapshot
    that uploads a disk to glance (the image goes queued, SAVING in nova's API, then
    active). The rest of the fake driver is the student's checkout, unchanged."""
    from nova.compute import task_states
    from nova import exception
    from nova.virt import fake

    disk = os.path.join(settings["cloud_dir"], "cirros.qcow2")

    def get_host_uptime(self):
        with open("/proc/uptime") as fh:
            seconds = int(float(fh.read().split()[0]))
        days, rest = divmod(seconds, 86400)
        hours, minutes = divmod(rest // 60, 60)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        up = (f"{days} day{'s' if days != 1 else ''}, " if days else "") + f"{hours:2d}:{minutes:02d}"
        return f" {time.strftime('%H:%M:%S')} up {up},  0 users,  load average: {load}"

    def get_console_output(self, context, instance):
        return _cirros_console(instance)

    def snapshot(self, context, instance, image_id, update_task_state):
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        from nova.image import glance

        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        with open(disk, "rb") as fh:
            glance.API().update(context, image_id, {"disk_format": "qcow2", "container_format": "bare"},
                                fh, purge_props=False)

    init_host_of_checkout = fake.FakeDriver.init_host

    def init_host(self, host):
        """The guests the host ran before nova-compute restarted: a hypervisor's domains
        outlive the compute service (`cloud restart` would otherwise leave every server
        ACTIVE in the database and unknown to the driver, so that stop, snapshot or
        rescue failed on it)."""
        init_host_of_checkout(self, host)
        from nova.compute import power_state, vm_states
        from nova import context as nova_context, objects

        running = {vm_states.ACTIVE: power_state.RUNNING, vm_states.RESCUED: power_state.RUNNING,
                   vm_states.RESIZED: power_state.RUNNING, vm_states.PAUSED: power_state.PAUSED,
                   vm_states.SUSPENDED: power_state.SUSPENDED, vm_states.STOPPED: power_state.SHUTDOWN}
        ctxt = nova_context.get_admin_context()
        for instance in objects.InstanceList.get_by_host(ctxt, host, expected_attrs=["flavor", "info_cache"]):
            if instance.vm_state not in running or instance.uuid in self.instances:
                continue
            flavor = instance.flavor
            self.resources.claim(vcpus=flavor.vcpus, mem=flavor.memory_mb, disk=flavor.root_gb)
            self.instances[instance.uuid] = fake.FakeInstance(instance.name, running[instance.vm_state],
                                                              instance.uuid)
            for vif in (instance.info_cache.network_info if instance.info_cache else None) or []:
                self._interfaces[vif["id"]] = vif

    fake.FakeDriver.init_host = init_host
    fake.FakeDriver.get_host_uptime = get_host_uptime
    fake.FakeDriver.get_console_output = get_console_output
    fake.FakeDriver.snapshot = snapshot


def _cirros_console(instance) -> str:
    """A cirros 0.6 boot log for this server: its name, its addresses, its ssh keys."""
    try:
        addresses = [ip["address"] for vif in instance.get_network_info() for ip in vif.fixed_ips()]
    except Exception:  # noqa: BLE001 (a console log never fails for want of addresses)
        addresses = []
    address = addresses[0] if addresses else "0.0.0.0"
    name = instance.hostname or instance.display_name or instance.uuid
    lines = [
        "[    0.000000] Linux version 5.15.0-119-generic (buildd@lcy02-amd64-061) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) "
        "11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #129-Ubuntu SMP Fri Aug 2 19:25:20 UTC 2024 (Ubuntu "
        "5.15.0-119.129-generic 5.15.160)",
        "[    0.000000] Command line: LABEL=cirros-rootfs ro console=tty1 console=ttyS0",
        "[    0.000000] KERNEL supported cpus:",
        "[    0.000000]   Intel GenuineIntel",
        "[    0.000000]   AMD AuthenticAMD",
        "[    0.000000] BIOS-provided physical RAM map:",
        "[    0.000000] BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable",
        "[    0.000000] BIOS-e820: [mem 0x0000000000100000-0x000000001ffdbfff] usable",
        "[    0.000000] DMI: OpenStack Foundation OpenStack Nova, BIOS 1.16.3-debian-1.16.3-2 04/01/2014",
        "[    0.000000] Hypervisor detected: KVM",
        "[    0.004211] tsc: Detected 2199.996 MHz processor",
        "[    0.187303] Memory: 456304K/523752K available (16393K kernel code, 4383K rwdata)",
        "[    0.612540] Freeing unused kernel image (initmem) memory: 3340K",
        "[    0.835160] virtio_blk virtio2: [vda] 2257920 512-byte logical blocks (1.16 GB/1.08 GiB)",
        "[    0.841102]  vda: vda1 vda15",
        "[    0.904218] EXT4-fs (vda1): mounted filesystem with ordered data mode. Opts: (null)",
        "[    1.402913] virtio_net virtio0 ens3: renamed from eth0",
        "info: initramfs: up at 1.46",
        "info: copying initramfs to /dev/vda1",
        "info: initramfs loading root from /dev/vda1",
        "info: /etc/init.d/rc.sysinit: up at 1.82",
        "info: container: none",
        "Starting logging: OK",
        "modprobe: module virtio_pci not found in modules.dep",
        "Initializing random number generator... done.",
        "Starting acpid: OK",
        "Starting network: udhcpc: started, v1.36.1",
        "udhcpc: broadcasting discover",
        f"udhcpc: broadcasting select for {address}, server 10.0.0.2",
        f"udhcpc: lease of {address} obtained from 10.0.0.2, lease time 86400",
        "route: SIOCADDRT: File exists",
        "WARN: failed: route add -net \"0.0.0.0/0\" gw \"10.0.0.1\"",
        "OK",
        f"checking http://169.254.169.254/2009-04-04/instance-id",
        f"successful after 1/20 tries: up 3.21. iid=i-{instance.id or 1:08x}",
        "failed to get http://169.254.169.254/2009-04-04/meta-data/public-keys",
        "warning: no ec2 metadata for public-keys",
        f"Top of dropbear init script",
        "Starting dropbear sshd: OK",
        "GROWROOT: NOCHANGE: partition 1 is size 2236383. it cannot be grown",
        "/dev/root resized successfully [took 0.04s]",
        "=== system information ===",
        "Platform: OpenStack Foundation OpenStack Nova",
        "Container: none",
        "Arch: x86_64",
        "CPU(s): 1 @ 2199.996 MHz",
        "Cores/Sockets/Threads: 1/1/1",
        "Virt-type: ",
        "RAM Size: 446MB",
        "Disks:",
        "NAME  MAJ:MIN       SIZE LABEL         MOUNTPOINT",
        "vda   253:0   1156055040               ",
        "vda1  253:1   1145028096 cirros-rootfs /",
        "vda15 253:15     8388608               ",
        "=== sshd host keys ===",
        "-----BEGIN SSH HOST KEY KEYS-----",
        f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{instance.uuid.replace('-', '')[:24]} root@{name}",
        "-----END SSH HOST KEY KEYS-----",
        "=== network info ===",
        f"if-info: lo,up,127.0.0.1,8,,",
        f"if-info: ens3,up,{address},26,fe80::f816:3eff:fe00:1/64,",
        "ip-route:default via 10.0.0.1 dev ens3",
        "=== cirros: current=0.6.3 uptime=3.88 ===",
        "  ____               ____  ____",
        " / __/ __ ____ ____ / __ \\/ __/",
        "/ /__ / // __// __// /_/ /\\ \\ ",
        "\\___//_//_/  /_/   \\____/___/ ",
        "   http://cirros-cloud.net",
        "",
        "",
        f"login as 'cirros' user. default password: 'gocubsgo'. use 'sudo' for root.",
        f"{name} login: ",
    ]
    return "\n".join(lines)


def _write_qcow2(path: str, virtual_size: int) -> None:
    """An empty qcow2 disk (version 2, 64 KiB clusters): header, refcount table, refcount
    block for the four clusters, an L1 table with nothing allocated. 256 KiB on disk;
    glance's format inspector and qemu-img read it as a disk of `virtual_size` bytes."""
    import struct

    cluster = 1 << 16
    l1_entries = -(-virtual_size // (cluster * (cluster // 8)))
    header = struct.pack(">IIQIIQIIQQIIQ", 0x514649FB, 2, 0, 0, 16, virtual_size, 0, l1_entries,
                         3 * cluster, cluster, 1, 0, 0)
    clusters = (header, struct.pack(">Q", 2 * cluster), struct.pack(">4H", 1, 1, 1, 1),
                struct.pack(f">{l1_entries}Q", *([0] * l1_entries)))
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        for data in clusters:
            fh.write(data.ljust(cluster, b"\0"))
    os.replace(tmp, path)


def _admin_session(settings: dict):
    """A keystoneauth session of DevStack's admin (admin project), as `source openrc admin admin`."""
    from keystoneauth1 import session
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=f"http://127.0.0.1:{settings['ports']['keystone']}/v3", username="admin",
                       password=settings["users"]["admin"], project_name="admin", user_domain_name="Default",
                       project_domain_name="Default")
    return session.Session(auth=auth)


# --------------------------------------------------------------------------- glance


def run_glance(settings: dict) -> None:
    glance = settings["glance"]
    os.environ["OS_GLANCE_CONFIG_DIR"] = glance["conf_dir"]
    sys.argv = ["glance-api"]
    first = not os.path.exists(glance["synced_marker"])
    database = os.path.join(settings["cloud_dir"], "glance.sqlite")
    if first:  # glance-manage db_sync (its CLI options cannot share the process's config)
        import subprocess

        t0 = time.monotonic()
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "glance-manage"), "--config-file",
                        os.path.join(glance["conf_dir"], "glance-api.conf"), "db_sync"],
                       check=True, stdout=sys.stdout, stderr=subprocess.STDOUT, timeout=300)
        LOG.info("glance database synced (%.1f s)", time.monotonic() - t0)
    _sqlite_pooled_connections()
    _sqlite_wal([database])
    _sqlite_transactions()
    from glance.common import wsgi_app

    app = wsgi_app.init_app()
    serve(json_body_limit(app), settings["ports"]["image"], "image")
    if first:
        wait_for_port(settings["ports"]["keystone"], 120)
        _upload_cirros(settings)
        open(glance["synced_marker"], "w").close()
    mark_ready(settings, "g-api")
    _wait_forever()


def _upload_cirros(settings: dict) -> None:
    """DevStack's one image, public, from a disk the kit makes (nothing is downloaded)."""
    disk = os.path.join(settings["cloud_dir"], "cirros.qcow2")
    if not os.path.exists(disk):
        _write_qcow2(disk, CIRROS_VIRTUAL_SIZE)
    sess = _admin_session(settings)
    images = f"http://127.0.0.1:{settings['ports']['image']}/v2/images"
    found = sess.get(f"{images}/{CIRROS_ID}", raise_exc=False)
    if found.status_code == 404:
        sess.post(images, json={"id": CIRROS_ID, "name": CIRROS_NAME, "disk_format": "qcow2",
                                "container_format": "bare", "visibility": "public"})
    elif found.json().get("status") == "active":
        return
    with open(disk, "rb") as fh:
        sess.put(f"{images}/{CIRROS_ID}/file", data=fh, headers={"Content-Type": "application/octet-stream"})
    LOG.info("uploaded %s (%s)", CIRROS_NAME, CIRROS_ID)


# --------------------------------------------------------------------------- neutron


def run_neutron(settings: dict) -> None:
    neutron = settings["neutron"]
    sys.path.insert(0, neutron["plugins"])  # the agentless ML2 driver and its entry point
    os.environ["OS_NEUTRON_CONFIG_DIR"] = neutron["conf_dir"]
    os.environ["OS_NEUTRON_CONFIG_FILES"] = neutron["files"]
    sys.argv = ["neutron-api"]
    # neutron's policy engine caches in `oslo_cache.dict`, which dogpile otherwise finds by
    # loading every dogpile.cache entry point: oslo_cache.memcache_pool's missing
    # python-memcached then logs an ERROR at the first request
    from dogpile.cache import register_backend

    register_backend("oslo_cache.dict", "oslo_cache.backends.dictionary", "DictCacheBackend")
    first = not os.path.exists(neutron["prepared_marker"])
    database = os.path.join(settings["cloud_dir"], "neutron.sqlite")
    # every model, their backrefs made (the port listing names Port.port_forwardings, a
    # backref that exists only once SQLAlchemy has configured the mappers, which a first
    # query would do: after a restart the first request may be that listing)
    from neutron.db.migration.models import head  # noqa: F401
    from sqlalchemy import orm

    orm.configure_mappers()

    if first:
        _neutron_schema(database)
    _sqlite_pooled_connections()
    _sqlite_wal([database])
    _sqlite_transactions()
    from neutron import server
    from neutron.server import api

    app = server.boot_server(api.api_server, prog="neutron-api")
    serve(json_body_limit(app), settings["ports"]["network"], "network")
    if first:
        wait_for_port(settings["ports"]["keystone"], 120)
        _devstack_networks(settings)
        open(neutron["prepared_marker"], "w").close()
    mark_ready(settings, "q-svc")
    _wait_forever()


def _neutron_schema(database: str) -> None:
    """neutron's tables from its models, as neutron's own tests make them on SQLite (its
    migrations alter constraints in ways SQLite cannot)."""
    import sqlalchemy
    from neutron.db.migration.models import head

    t0 = time.monotonic()
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    head.get_metadata().create_all(engine)
    engine.dispose()
    LOG.info("neutron database made (%.1f s)", time.monotonic() - t0)


def _devstack_networks(settings: dict) -> None:
    """What DevStack's create_neutron_initial_network makes: `public` (external, flat,
    172.24.4.0/24, the floating IP pool), demo's `private` (10.0.0.0/26) and demo's
    `router1` between them. Idempotent: a network or router that exists is kept."""
    with open(os.path.join(settings["cloud_dir"], PROJECTS_FILE)) as fh:
        projects = json.load(fh)
    sess = _admin_session(settings)
    base = f"http://127.0.0.1:{settings['ports']['network']}/v2.0"

    def ensure(collection: str, body: dict) -> dict:
        kind = collection[:-1]
        found = sess.get(f"{base}/{collection}?name={body['name']}").json()[collection]
        if found:
            return found[0]
        return sess.post(f"{base}/{collection}", json={kind: body}).json()[kind]

    public = ensure("networks", {"name": "public", "router:external": True, "provider:network_type": "flat",
                                 "provider:physical_network": "public", "project_id": projects["admin"]})
    ensure("subnets", {"name": "public-subnet", "network_id": public["id"], "ip_version": 4,
                       "cidr": "172.24.4.0/24", "gateway_ip": "172.24.4.1", "enable_dhcp": False,
                       "allocation_pools": [{"start": "172.24.4.2", "end": "172.24.4.254"}],
                       "project_id": projects["admin"]})
    private = ensure("networks", {"name": "private", "project_id": projects["demo"]})
    subnet = ensure("subnets", {"name": "private-subnet", "network_id": private["id"], "ip_version": 4,
                                "cidr": "10.0.0.0/26", "gateway_ip": "10.0.0.1", "project_id": projects["demo"]})
    router = ensure("routers", {"name": "router1", "project_id": projects["demo"],
                                "external_gateway_info": {"network_id": public["id"]}})
    ports = sess.get(f"{base}/ports?device_id={router['id']}&network_id={private['id']}").json()["ports"]
    if not ports:
        sess.put(f"{base}/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
    LOG.info("DevStack's networks: public, private (demo), router1")




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


def _wait_forever() -> None:
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


def main(argv: list[str]) -> None:
    kind, cloud_dir = argv[1], argv[2]
    settings = load_settings(cloud_dir)
    stack_room_for_every_thread()
    sys.argv = [f"debuglab-{kind}"]  # the services parse sys.argv as their command line
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    runs = {"keystone": run_keystone, "nova": run_nova, "g-api": run_glance, "q-svc": run_neutron}
    if kind in runs:
        runs[kind](settings)
    else:
        raise SystemExit(f"unknown service {kind!r}")


if __name__ == "__main__":
    main(sys.argv)
