"""The fake virt driver made to look like a host: uptime, a cirros console log, snapshots that
upload to glance, guests re-adopted after a restart; DevStack's cirros image as a qcow2.

Part of the cloud's launcher: runs under the lab's python and imports nothing from debuglab."""

from __future__ import annotations

import os
import string
import time

from .settings import LauncherSettings

CIRROS_CONSOLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cirros-console.txt")  # a cirros 0.6 boot
CIRROS_ID = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # the id nova's own tests give their first image


CIRROS_NAME = "cirros-0.6.3-x86_64-disk"  # as DevStack names the one image it uploads


CIRROS_VIRTUAL_SIZE = 117440512  # 112 MiB, as cirros 0.6.3's disk


def fake_host(settings: LauncherSettings) -> None:
    """What a DevStack host gives that nova's fake driver does not: the host's uptime (the
    libvirt driver runs `uptime`), a console log as long as a cirros boot's, and a snapshot
    that uploads a disk to glance (the image goes queued, SAVING in nova's API, then
    active). The rest of the fake driver is the student's checkout, unchanged."""
    from nova import exception
    from nova.compute import task_states
    from nova.virt import fake

    disk = os.path.join(settings.cloud_dir, "cirros.qcow2")

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
        from nova import context as nova_context
        from nova import objects
        from nova.compute import power_state, vm_states

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
    template = string.Template(open(CIRROS_CONSOLE, encoding="utf-8").read())
    return template.substitute(name=name, address=address, key=instance.uuid.replace("-", "")[:24],
                               iid=f"{instance.id or 1:08x}").rstrip("\n")


def write_qcow2(path: str, virtual_size: int) -> None:
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
