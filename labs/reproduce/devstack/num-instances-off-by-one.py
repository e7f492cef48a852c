# Configure the scheduler as in the story: nova's default filters plus NumInstancesFilter, with a
# per-host limit that leaves room for two more servers on the compute host, in the nova.conf the
# units read ($DEBUGLAB_NOVA_CONF, DevStack's /etc/nova/nova.conf), set with DevStack's own
# `iniset` ($DEBUGLAB_CONFIG_SET); restarting devstack@n-sch loads it. Then boot three servers one
# after the other (raw REST, as `openstack server create --wait` does) and see which end ACTIVE.
# At the end the two options are put back as they were (nova's defaults if they were unset) and
# devstack@n-sch restarted, so that the limit does not stop other servers; set KEEP_CONFIG = True
# to keep it for live debugging.
import configparser, os, shlex, subprocess, time

KEEP_CONFIG = False
name = "dl.reproduce-limit"
compute = {"service_type": "compute"}
HEADERS = {"OpenStack-API-Version": "compute 2.53"}  # 2.37+: "networks": "none"; admin sees hosts
DEFAULTS = {"enabled_filters": "ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,"
                               "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter",
            "max_instances_per_host": "50"}  # nova's own, when nova.conf does not set them


def nova_api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=compute, headers=HEADERS, **kwargs)


def servers(query=""):
    return nova_api("GET", f"/servers/detail?all_tenants=1{query}").json()["servers"]


def set_options(values):
    for option, value in values.items():
        command = os.environ["DEBUGLAB_CONFIG_SET"].format(section="filter_scheduler", option=option,
                                                           value=shlex.quote(value))
        print("$", command)
        subprocess.run(command, shell=True, check=True, capture_output=True)
    restart("devstack@n-sch")  # the scheduler reads nova.conf when it starts (requests wait in its queue)


# What a previous run left.
old = [s["id"] for s in servers(f"&name=^{name}")]
for server_id in old:
    nova_api("DELETE", f"/servers/{server_id}")
t0 = time.monotonic()
while set(old) & {s["id"] for s in servers(f"&name=^{name}")} and time.monotonic() - t0 < 60:
    time.sleep(0.5)

host = nova_api("GET", "/os-hypervisors").json()["hypervisors"][0]["hypervisor_hostname"]
already = [s for s in servers() if s.get("OS-EXT-SRV-ATTR:hypervisor_hostname") == host]
LIMIT = len(already) + 2
wanted = {"enabled_filters": DEFAULTS["enabled_filters"] + ",NumInstancesFilter",
          "max_instances_per_host": str(LIMIT)}

NOVA_CONF = pathlib.Path(os.environ["DEBUGLAB_NOVA_CONF"])
running = configparser.ConfigParser(interpolation=None, strict=False)
running.read(NOVA_CONF)
before = {k: running.get("filter_scheduler", k, fallback=None) for k in wanted}
changed = before != wanted
if changed:
    set_options(wanted)
print(f"[filter_scheduler] enabled_filters = ...,NumInstancesFilter  max_instances_per_host = {LIMIT}")
print(f"host {host} runs {len(already)} server(s) already: room for {LIMIT - len(already)} more\n")

image = next(i for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"].startswith("cirros"))
flavor = next(f for f in nova_api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
wrong = []
for n in (1, 2, 3):
    created = nova_api("POST", "/servers", json={"server": {
        "name": f"{name}-{n}", "imageRef": image["id"], "flavorRef": flavor["id"], "networks": "none"}})
    server_id = created.json()["server"]["id"]
    t0 = time.monotonic()
    while True:
        server = nova_api("GET", f"/servers/{server_id}").json()["server"]
        if server["status"] != "BUILD" or time.monotonic() - t0 > 120:
            break
        time.sleep(0.5)
    expected = "ACTIVE" if len(already) + n <= LIMIT else "ERROR"
    fault = server.get("fault", {}).get("message", "")
    print(f"{server['name']}: {server['status']:<6} host {server.get('OS-EXT-SRV-ATTR:host')}"
          f"   expected: {expected}   {fault}")
    if server["status"] != expected:
        wrong.append(server["name"])
on_host = [s for s in servers() if s.get("OS-EXT-SRV-ATTR:hypervisor_hostname") == host]
print(f"\nhost {host} now runs {len(on_host)} servers; its limit is {LIMIT}")

if changed and not KEEP_CONFIG:
    set_options({k: v if v is not None else DEFAULTS[k] for k, v in before.items()})
    print("(the scheduler's configuration is back as it was)")

BUG_SEEN = bool(wrong)
