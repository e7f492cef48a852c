"""The threaded WSGI server every service of the cloud answers on (127.0.0.1), with chunked request
bodies and the JSON body limit that DevStack's services apply.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import time
from wsgiref import simple_server

from .logs import tag_wsgi_threads
from .stackroom import in_stack_room

LOG = logging.getLogger("debuglab.launcher")


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """One thread per request: a request stopped in a debugger blocks nobody else."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def process_request_thread(self, request, client_address):
        in_stack_room(super().process_request_thread, request, client_address)


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
    app = _profiled(tag_wsgi_threads(_chunked_bodies(app), name), name)
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
