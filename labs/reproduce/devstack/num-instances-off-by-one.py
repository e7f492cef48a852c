# Configure the scheduler as in the story: NumInstancesFilter with a per-host limit, in the
# nova.conf the units read ($DEBUGLAB_NOVA_CONF, DevStack's /etc/nova/nova.conf), set with
# DevStack's own `iniset` ($DEBUGLAB_CONFIG_SET); restarting devstack@n-sch loads it.
# The compute host may run servers of yours already: the limit leaves room for two more.
import configparser, os, shlex, subprocess, time

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

NOVA_CONF = pathlib.Path(os.environ["DEBUGLAB_NOVA_CONF"])
running = configparser.ConfigParser(interpolation=None, strict=False)
running.read(NOVA_CONF)
if any(running.get("filter_scheduler", k, fallback=None) != v for k, v in wanted.items()):
    for option, value in wanted.items():
        command = os.environ["DEBUGLAB_CONFIG_SET"].format(section="filter_scheduler", option=option,
                                                           value=shlex.quote(value))
        print("$", command)
        subprocess.run(command, shell=True, check=True, capture_output=True)
    restart("devstack@n-sch")  # the scheduler reads nova.conf when it starts (requests wait in its queue)
print(f"[filter_scheduler] enabled_filters = {wanted['enabled_filters']}, max_instances_per_host = {LIMIT}")
print(f"host {host} runs {len(already)} server(s) already: room for {LIMIT - len(already)} more\n")

image = next(i for i in nova.glance.list() if i.name.startswith("cirros"))
flavor = nova.flavors.find(name="m1.tiny")
for n in (1, 2, 3):
    server = nova.servers.create(f"{name}-{n}", image=image.id, flavor=flavor, nics="none")
    t0 = time.monotonic()
    while server.status == "BUILD" and time.monotonic() - t0 < 120:
        time.sleep(0.5)
        server = nova.servers.get(server.id)
    expected = "ACTIVE" if len(already) + n <= LIMIT else "ERROR (no valid host)"
    fault = getattr(server, "fault", {}).get("message", "")
    print(f"{server.name}: {server.status:<6} on host {getattr(server, 'OS-EXT-SRV-ATTR:host', None)}"
          f"   expected: {expected}  {fault}")
on_host = [s for s in nova.servers.list(search_opts={"all_tenants": 1})
           if getattr(s, "OS-EXT-SRV-ATTR:hypervisor_hostname", None) == host]
print(f"\nhost {host} now runs {len(on_host)} servers; its limit is {LIMIT}")
