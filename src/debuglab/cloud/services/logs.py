"""One log per service: nova's process runs n-api, n-cond, n-sch, n-cpu and placement, and
each line goes to the log of the service whose thread wrote it.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import logging
import os
import threading

from .settings import LauncherSettings

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


def per_service_logs(settings: LauncherSettings) -> None:
    """The router, with the formatter of oslo.log's own handler (nova.conf's
    logging_context_format_string: `[req-… user project]`)."""
    from oslo_log import formatters

    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if isinstance(h.formatter, formatters.ContextFormatter)),
                     None)
    if formatter is None:  # oslo.log not set up (never so after init_global_data)
        import nova.conf

        formatter = formatters.ContextFormatter(project="nova", config=nova.conf.CONF)
    root.addHandler(ServiceLogRouter(settings.logs_dir, formatter))


def tag_wsgi_threads(app, name: str):
    service = WSGI_SERVICES.get(name)

    def tagged(environ, start_response):
        _service_of_thread.name = service  # a thread per request (ThreadingMixIn)
        return app(environ, start_response)

    return tagged


def tag_rpc_threads(svc, service: str) -> None:
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
