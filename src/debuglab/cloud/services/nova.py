"""nova on its threading backend: the API, conductor, scheduler and compute (the fake driver), and
placement, sharing the in-memory `fake:/` message bus.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import glob
import logging
import os
import sys
import time

from .fakehost import fake_host
from .logs import RPC_SERVICES, per_service_logs, tag_rpc_threads
from .process import serve_until_stopped, setup_debugger
from .settings import LauncherSettings
from .sqlite import sqlite_pooled_connections, sqlite_transactions, sqlite_wal
from .wsgi import serve, wait_for_port

LOG = logging.getLogger("debuglab.launcher")


def run_nova(settings: LauncherSettings) -> None:
    from nova import monkey_patch

    monkey_patch.patch(backend="threading")
    sqlite_pooled_connections()

    nova_settings = settings.nova
    os.environ["OS_NOVA_CONFIG_DIR"] = nova_settings.conf_dir
    os.environ["OS_NOVA_CONFIG_FILES"] = f"{nova_settings.api_paste};nova.conf"
    sys.argv = ["nova-api"]

    from nova.api.openstack import wsgi_app

    wsgi_app.init_global_data(wsgi_app._get_config_files(), "osapi_compute", "nova-api")
    per_service_logs(settings)
    setup_debugger(settings)

    import nova.conf
    from nova import context, objects

    conf = nova.conf.CONF
    t0 = time.monotonic()
    first = not os.path.exists(nova_settings.prepared_marker)
    if first:
        _prepare_nova_db(nova_settings)
    LOG.info("nova databases ready (%.1f s)", time.monotonic() - t0)

    placement_app = _placement_app(settings)
    sqlite_wal(glob.glob(os.path.join(settings.cloud_dir, "nova_*.sqlite"))
                + [os.path.join(settings.cloud_dir, "placement.sqlite")])
    sqlite_transactions()  # after the migrations, which manage their own transactions
    servers = [serve(placement_app, settings.ports["placement"], "placement")]

    fake_host(settings)
    wait_for_port(settings.ports["keystone"], 120)  # after its bootstrap: nova-compute's start asks for tokens

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
        tag_rpc_threads(svc, RPC_SERVICES[svc.binary])
    for svc in services:
        # heartbeat now, not after the servicegroup's initial delay: a server created
        # right after a restart would otherwise find the compute "not heard from"
        svc.servicegroup_api._driver._report_state(svc)
    if first:
        from nova.cmd import manage

        manage.CellV2Commands().discover_hosts()
        _default_flavors(context.get_admin_context())
        open(nova_settings.prepared_marker, "w").close()

    app = wsgi_app.init_application("osapi_compute", "nova-api")
    _check_overrides(settings, conf, "nova.conf")
    servers.append(serve(app, settings.ports["nova"], "nova"))
    LOG.info("nova services up: n-api, n-cond, n-sch, n-cpu, placement (host %s)", conf.host)
    serve_until_stopped(settings, "nova")


def _check_overrides(settings: LauncherSettings, conf, file: str) -> None:
    """Say which of local.conf's options the service does not know (oslo.config ignores
    them silently: a typo would otherwise look like a setting that has no effect)."""
    from oslo_config import cfg

    for o in settings.overrides:
        if o.file != file:
            continue
        try:
            getattr(conf if o.section == "DEFAULT" else getattr(conf, o.section), o.option)
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError, AttributeError):
            LOG.warning("%s: [%s] %s is not an option of %s: it has no effect (a typo?)",
                        o.where, o.section, o.option, file)
        else:
            LOG.info("%s: [%s] %s = %r (from local.conf)", o.where, o.section, o.option,
                     getattr(conf if o.section == "DEFAULT" else getattr(conf, o.section), o.option))


def _prepare_nova_db(nova_settings: LauncherSettings) -> None:
    """nova-manage's own commands, in process: api_db sync, map_cell0, create cell1, db sync."""
    from nova.cmd import manage

    manage.ApiDbCommands().sync()
    manage.CellV2Commands().map_cell0(database_connection=nova_settings.cell0_connection)
    manage.DbCommands().sync(local_cell=False)
    rc = manage.CellV2Commands().create_cell(name="cell1")
    if rc not in (None, 0, 2):  # 2: a cell with that transport/db exists already
        raise RuntimeError(f"nova-manage cell_v2 create_cell failed ({rc})")


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


def _placement_app(settings: LauncherSettings):
    """openstack-placement's own application, as placement.wsgi.init_application builds it
    (without its logging setup: the process has one already)."""
    from oslo_config import cfg
    from placement import conf as placement_conf
    from placement import db_api, deploy
    from placement import wsgi as placement_wsgi
    from placement.db.sqlalchemy import migration

    config = cfg.ConfigOpts()
    placement_conf.register_opts(config)
    placement_wsgi._parse_args(config, [], default_config_files=[settings.placement.conf])
    db_api.configure(config)
    migration.upgrade("head")
    return deploy.loadapp(config)
