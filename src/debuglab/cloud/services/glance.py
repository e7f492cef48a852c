"""glance-api: its WSGI application, SQLite and the file store in the cloud's folder; DevStack's
cirros image at the first start.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import logging
import os
import sys
import time

from .fakehost import CIRROS_ID, CIRROS_NAME, CIRROS_VIRTUAL_SIZE, write_qcow2
from .process import admin_session, serve_until_stopped
from .settings import LauncherSettings
from .sqlite import sqlite_pooled_connections, sqlite_serving
from .wsgi import json_body_limit, serve

LOG = logging.getLogger("debuglab.launcher")


def run_glance(settings: LauncherSettings) -> None:
    glance = settings.glance
    os.environ["OS_GLANCE_CONFIG_DIR"] = glance.conf_dir
    sys.argv = ["glance-api"]
    first = not os.path.exists(glance.synced_marker)
    database = os.path.join(settings.cloud_dir, "glance.sqlite")
    if first:  # glance-manage db_sync (its CLI options cannot share the process's config)
        import subprocess

        t0 = time.monotonic()
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "glance-manage"), "--config-file",
                        os.path.join(glance.conf_dir, "glance-api.conf"), "db_sync"],
                       check=True, stdout=sys.stdout, stderr=subprocess.STDOUT, timeout=300)
        LOG.info("glance database synced (%.1f s)", time.monotonic() - t0)
    sqlite_pooled_connections()
    sqlite_serving([database])
    from glance.common import wsgi_app

    app = wsgi_app.init_app()
    serve(json_body_limit(app), settings.ports["image"], "image")
    serve_until_stopped(settings, "g-api", first=first, marker=glance.synced_marker, first_start=_upload_cirros)


def _upload_cirros(settings: LauncherSettings) -> None:
    """DevStack's one image, public, from a disk the kit makes (nothing is downloaded)."""
    disk = os.path.join(settings.cloud_dir, "cirros.qcow2")
    if not os.path.exists(disk):
        write_qcow2(disk, CIRROS_VIRTUAL_SIZE)
    sess = admin_session(settings)
    images = f"http://127.0.0.1:{settings.ports['image']}/v2/images"
    found = sess.get(f"{images}/{CIRROS_ID}", raise_exc=False)
    if found.status_code == 404:
        sess.post(images, json={"id": CIRROS_ID, "name": CIRROS_NAME, "disk_format": "qcow2",
                                "container_format": "bare", "visibility": "public"})
    elif found.json().get("status") == "active":
        return
    with open(disk, "rb") as fh:
        sess.put(f"{images}/{CIRROS_ID}/file", data=fh, headers={"Content-Type": "application/octet-stream"})
    LOG.info("uploaded %s (%s)", CIRROS_NAME, CIRROS_ID)
