# Configure the scheduler as in the story: NumInstancesFilter with a per-host limit.
# On DevStack that is nova.conf; here it goes into the lab's local.conf (DevStack's
# [[post-config|$NOVA_CONF]]) with `debuglab cloud config set`, and a restart loads it.
# The one compute host may run servers of yours already: the limit leaves room for two more.
import configparser, subprocess, time

name = "dl.reproduce-limit"
for old in nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{name}"}):
    old.delete()
    while any(s.id == old.id for s in nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{name}"})):
        time.sleep(0.2)
host = nova.hypervisors.list()[0].hypervisor_hostname
already = [s for s in nova.servers.list(search_opts={"all_tenants": 1})
           if getattr(s, "OS-EXT-SRV-ATTR:hypervisor_hostname", None) == host]
LIMIT = len(already) + 2
wanted = {"enabled_filters": "ComputeFilter,NumInstancesFilter", "max_instances_per_host": str(LIMIT)}

running = configparser.ConfigParser(interpolation=None)
running.read(LAB / "cloud" / "etc" / "nova.conf")  # the nova.conf the cloud runs with
if any(running.get("filter_scheduler", k, fallback=None) != v for k, v in wanted.items()):
    for option, value in wanted.items():
        subprocess.run([DEBUGLAB, "cloud", "config", "set", "--dir", str(LAB), "filter_scheduler", option, value],
                       check=True)
    subprocess.run([DEBUGLAB, "cloud", "restart", "--dir", str(LAB)], check=True, capture_output=True)
print(f"[filter_scheduler] enabled_filters = {wanted['enabled_filters']}, max_instances_per_host = {LIMIT}")
print(f"host {host} runs {len(already)} server(s) already: room for {LIMIT - len(already)} more\n")

image = nova.glance.find_image("cirros-0.6.3-x86_64-disk")
flavor = nova.flavors.find(name="m1.tiny")
for n in (1, 2, 3):
    server = nova.servers.create(f"{name}-{n}", image=image, flavor=flavor, nics="none")
    t0 = time.monotonic()
    while server.status == "BUILD" and time.monotonic() - t0 < 60:
        time.sleep(0.2)
        server = nova.servers.get(server.id)
    expected = "ACTIVE" if len(already) + n <= LIMIT else "ERROR (no valid host)"
    fault = getattr(server, "fault", {}).get("message", "")
    print(f"{server.name}: {server.status:<6} on host {getattr(server, 'OS-EXT-SRV-ATTR:host', None)}"
          f"   expected: {expected}  {fault}")
on_host = [s for s in nova.servers.list(search_opts={"all_tenants": 1})
           if getattr(s, "OS-EXT-SRV-ATTR:hypervisor_hostname", None) == host]
print(f"\nhost {host} now runs {len(on_host)} servers; its limit is {LIMIT}")
