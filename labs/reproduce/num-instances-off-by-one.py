# Configure the scheduler as in the story: nova's default filters plus NumInstancesFilter, with a
# per-host limit that leaves room for two more servers on the one compute host. On DevStack that
# is nova.conf; here it goes into the lab's local.conf (DevStack's [[post-config|$NOVA_CONF]])
# with `debuglab cloud config set`, and a restart loads it. Then boot three servers one after the
# other (raw REST, as `openstack server create --wait` does) and see which end ACTIVE.
# At the end the configuration is put back as it was (one more restart), so that the limit does
# not stop the servers of other notebooks; set KEEP_CONFIG = True to keep it for live debugging
# (then `debuglab cloud config unset --dir LAB filter_scheduler ...` when you are done).
import configparser, subprocess, time

KEEP_CONFIG = False
name = "dl.reproduce-limit"
compute = {"service_type": "compute"}
HEADERS = {"OpenStack-API-Version": "compute 2.53"}  # 2.37+: "networks": "none"; admin sees hosts


def nova_api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=compute, headers=HEADERS, **kwargs)


def servers(query=""):
    return nova_api("GET", f"/servers/detail?all_tenants=1{query}").json()["servers"]


def config(*args):
    subprocess.run([DEBUGLAB, "cloud", *args, "--dir", str(LAB)], check=True, capture_output=True)


# What a previous run left.
old = [s["id"] for s in servers(f"&name=^{name}")]
for server_id in old:
    nova_api("DELETE", f"/servers/{server_id}")
t0 = time.monotonic()
while set(old) & {s["id"] for s in servers(f"&name=^{name}")} and time.monotonic() - t0 < 30:
    time.sleep(0.3)

host = nova_api("GET", "/os-hypervisors").json()["hypervisors"][0]["hypervisor_hostname"]
already = [s for s in servers() if s.get("OS-EXT-SRV-ATTR:hypervisor_hostname") == host]
LIMIT = len(already) + 2
wanted = {"enabled_filters": "ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,"
                             "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,NumInstancesFilter",
          "max_instances_per_host": str(LIMIT)}

running = configparser.ConfigParser(interpolation=None)
running.read(LAB / "cloud" / "etc" / "nova.conf")  # the nova.conf the cloud runs with
before = {k: running.get("filter_scheduler", k, fallback=None) for k in wanted}
changed = before != wanted
if changed:
    for option, value in wanted.items():
        config("config", "set", "filter_scheduler", option, value)
    config("restart")
print(f"[filter_scheduler] enabled_filters = ...,NumInstancesFilter  max_instances_per_host = {LIMIT}")
print(f"host {host} runs {len(already)} server(s) already: room for {LIMIT - len(already)} more\n")

image = next(i for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
flavor = next(f for f in nova_api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
wrong = []
for n in (1, 2, 3):
    created = nova_api("POST", "/servers", json={"server": {
        "name": f"{name}-{n}", "imageRef": image["id"], "flavorRef": flavor["id"], "networks": "none"}})
    server_id = created.json()["server"]["id"]
    t0 = time.monotonic()
    while True:
        server = nova_api("GET", f"/servers/{server_id}").json()["server"]
        if server["status"] != "BUILD" or time.monotonic() - t0 > 40:
            break
        time.sleep(0.3)
    expected = "ACTIVE" if len(already) + n <= LIMIT else "ERROR"
    fault = server.get("fault", {}).get("message", "")
    print(f"{server['name']}: {server['status']:<6} host {server.get('OS-EXT-SRV-ATTR:host')}"
          f"   expected: {expected}   {fault}")
    if server["status"] != expected:
        wrong.append(server["name"])
on_host = [s for s in servers() if s.get("OS-EXT-SRV-ATTR:hypervisor_hostname") == host]
print(f"\nhost {host} now runs {len(on_host)} servers; its limit is {LIMIT}")

if changed and not KEEP_CONFIG:
    for option, value in before.items():
        if value is None:
            config("config", "unset", "filter_scheduler", option)
        else:
            config("config", "set", "filter_scheduler", option, value)
    config("restart")
    print("(the scheduler's configuration is back as it was)")

BUG_SEEN = bool(wrong)
