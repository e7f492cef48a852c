"""SQLite under concurrent requests: pooled connections, WAL, and BEGIN IMMEDIATE for writers, so
clients wait for one another instead of getting "database is locked".

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import threading


def sqlite_pooled_connections() -> None:
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


def sqlite_transactions() -> None:
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


def sqlite_wal(paths: list[str]) -> None:
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


def sqlite_serving(paths: list[str]) -> None:
    """The databases of a service that starts serving: WAL, and writers that wait their turn."""
    sqlite_wal(paths)
    sqlite_transactions()
