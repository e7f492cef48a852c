"""neutron's API: ML2 with flat and local networks and the agentless mechanism driver (ml2.py);
DevStack's `public`, `private` and `router1` at the first start.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from .keystone import PROJECTS_FILE
from .process import admin_session, serve_until_stopped
from .settings import LauncherSettings
from .sqlite import sqlite_pooled_connections, sqlite_serving
from .wsgi import json_body_limit, serve

LOG = logging.getLogger("debuglab.launcher")


def run_neutron(settings: LauncherSettings) -> None:
    neutron = settings.neutron
    sys.path.insert(0, neutron.plugins)  # the agentless ML2 driver and its entry point
    os.environ["OS_NEUTRON_CONFIG_DIR"] = neutron.conf_dir
    os.environ["OS_NEUTRON_CONFIG_FILES"] = neutron.files
    sys.argv = ["neutron-api"]
    # neutron's policy engine caches in `oslo_cache.dict`, which dogpile otherwise finds by
    # loading every dogpile.cache entry point: oslo_cache.memcache_pool's missing
    # python-memcached then logs an ERROR at the first request
    from dogpile.cache import register_backend

    register_backend("oslo_cache.dict", "oslo_cache.backends.dictionary", "DictCacheBackend")
    first = not os.path.exists(neutron.prepared_marker)
    database = os.path.join(settings.cloud_dir, "neutron.sqlite")
    # every model, their backrefs made (the port listing names Port.port_forwardings, a
    # backref that exists only once SQLAlchemy has configured the mappers, which a first
    # query would do: after a restart the first request may be that listing)
    from neutron.db.migration.models import head  # noqa: F401
    from sqlalchemy import orm

    orm.configure_mappers()

    if first:
        _neutron_schema(database)
    sqlite_pooled_connections()
    sqlite_serving([database])
    from neutron import server
    from neutron.server import api

    app = server.boot_server(api.api_server, prog="neutron-api")
    serve(json_body_limit(app), settings.ports["network"], "network")
    serve_until_stopped(settings, "q-svc", first=first, marker=neutron.prepared_marker, first_start=_devstack_networks)


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


def _devstack_networks(settings: LauncherSettings) -> None:
    """What DevStack's create_neutron_initial_network makes: `public` (external, flat,
    172.24.4.0/24, the floating IP pool), demo's `private` (10.0.0.0/26) and demo's
    `router1` between them. Idempotent: a network or router that exists is kept."""
    with open(os.path.join(settings.cloud_dir, PROJECTS_FILE)) as fh:
        projects = json.load(fh)
    sess = admin_session(settings)
    base = f"http://127.0.0.1:{settings.ports['network']}/v2.0"

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
