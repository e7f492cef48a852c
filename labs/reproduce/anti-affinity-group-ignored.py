# Two servers booted with `nova boot --hint group=<id>` (the nova CLI of the lab venv) into one
# anti-affinity server group. The cloud has one compute host, so the second one must not find a
# host: ERROR, "No valid host was found". What nova did is read back with raw REST (no client).
import configparser, os, subprocess, time

name = "dl.reproduce-aa"
compute = {"service_type": "compute"}
MICROVERSION = {"OpenStack-API-Version": "compute 2.96"}


def nova_api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=compute, headers=MICROVERSION, **kwargs)


def servers_named():
    return nova_api("GET", f"/servers/detail?all_tenants=1&name=^{name}").json()["servers"]


# What a previous run left.
old = servers_named()
for server in old:
    nova_api("DELETE", f"/servers/{server['id']}")
t0 = time.monotonic()
while servers_named() and time.monotonic() - t0 < 30:
    time.sleep(0.3)
for group in nova_api("GET", "/os-server-groups?all_projects=True").json()["server_groups"]:
    if group["name"] == name:
        nova_api("DELETE", f"/os-server-groups/{group['id']}")

# The scheduler must run its anti-affinity filter (it does by default; another bug's notebook
# may have narrowed [filter_scheduler] enabled_filters).
running = configparser.ConfigParser(interpolation=None)
running.read(LAB / "cloud" / "etc" / "nova.conf")
filters = running.get("filter_scheduler", "enabled_filters", fallback=None)
if filters is not None and "ServerGroupAntiAffinityFilter" not in filters:
    filters = filters.rstrip(",") + ",ServerGroupAntiAffinityFilter"
    subprocess.run([DEBUGLAB, "cloud", "config", "set", "--dir", str(LAB), "filter_scheduler",
                    "enabled_filters", filters], check=True, capture_output=True)
    subprocess.run([DEBUGLAB, "cloud", "restart", "--dir", str(LAB)], check=True, capture_output=True)
    print(f"[filter_scheduler] enabled_filters = {filters} (set in local.conf; the cloud was restarted to load it)")

group = nova_api("POST", "/os-server-groups",
                 json={"server_group": {"name": name, "policy": "anti-affinity"}}).json()["server_group"]
hosts = nova_api("GET", "/os-hypervisors").json()["hypervisors"]
print(f"server group {name} ({group['id']}), policy anti-affinity; compute hosts: {len(hosts)}\n")

env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
env.update(OS_AUTH_URL=cloud["auth"]["auth_url"], OS_USERNAME=cloud["auth"]["username"],
           OS_PASSWORD=cloud["auth"]["password"], OS_PROJECT_NAME=cloud["auth"]["project_name"],
           OS_USER_DOMAIN_NAME=cloud["auth"]["user_domain_name"],
           OS_PROJECT_DOMAIN_NAME=cloud["auth"]["project_domain_name"],
           OS_REGION_NAME=cloud["region_name"], OS_IDENTITY_API_VERSION="3")
servers = []
for n in (1, 2):
    cmd = ["nova", "boot", "--flavor", "m1.tiny", "--image", "cirros-0.6.3-x86_64-disk", "--nic", "none",
           "--hint", f"group={group['id']}", f"{name}-{n}"]
    print("$ " + " ".join(cmd))
    booted = subprocess.run([str(LAB / "venv" / "bin" / "nova"), *cmd[1:]], env=env,
                            capture_output=True, text=True, timeout=40)
    if booted.returncode:
        raise RuntimeError(f"nova boot failed: {booted.stderr.strip()}")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 40:
        server = next((s for s in servers_named() if s["name"] == f"{name}-{n}"), None)
        if server and server["status"] != "BUILD":
            break
        time.sleep(0.3)
    servers.append(server)

print(f"\n{'server':<20} {'status':<7} {'host':<10} fault")
for server in servers:
    print(f"{server['name']:<20} {server['status']:<7} {str(server['OS-EXT-SRV-ATTR:host']):<10} "
          f"{server.get('fault', {}).get('message', '')}")
members = nova_api("GET", f"/os-server-groups/{group['id']}").json()["server_group"]["members"]
print(f"\nmembers of {name}: {len(members)} {members}")
print("expected: the first server ACTIVE, the second ERROR (No valid host was found), "
      "both members of the group")
if servers[0]["status"] != "ACTIVE":
    raise RuntimeError("the first server did not become ACTIVE: the cloud cannot take one more server")
BUG_SEEN = servers[1]["status"] == "ACTIVE"
