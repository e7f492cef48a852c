# Two servers that fail to schedule, each for its own reason, then their faults as nova-api
# shows them in the server list (GET /servers/detail, what `nova list`, Horizon and
# `openstack server list --long` read) and one by one (GET /servers/{id}, `server show`).
# Raw REST through the admin session: what nova-api answers, no client in between.
import time

name = "dl.reproduce-fault"
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
for flavor in nova_api("GET", "/flavors?is_public=None").json()["flavors"]:
    if flavor["name"] == name:
        nova_api("DELETE", f"/flavors/{flavor['id']}")

image = next(i["id"] for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
huge = nova_api("POST", "/flavors", json={"flavor": {"name": name, "ram": 4194304, "vcpus": 512,
                                                      "disk": 1}}).json()["flavor"]
attempts = [  # (server name, what makes it fail, extra fields of the request)
    (f"{name}-1", "a host that does not exist (--availability-zone nova:no-such-host)",
     {"flavorRef": "1", "availability_zone": "nova:no-such-host"}),
    (f"{name}-2", "a flavor no host can hold (4 TiB of RAM)", {"flavorRef": huge["id"]}),
]
ids = {}
for server_name, why, extra in attempts:
    body = {"server": {"name": server_name, "imageRef": image, "networks": "none", **extra}}
    ids[server_name] = nova_api("POST", "/servers", json=body).json()["server"]["id"]
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        status = nova_api("GET", f"/servers/{ids[server_name]}").json()["server"]["status"]
        if status != "BUILD":
            break
        time.sleep(0.3)
    print(f"{server_name}: {status:<6} booted with {why}")

listed = {s["name"]: s.get("fault", {}).get("message") for s in servers_named()}
print()
wrong = []
for server_name, server_id in ids.items():
    shown = nova_api("GET", f"/servers/{server_id}").json()["server"].get("fault", {}).get("message")
    if listed.get(server_name) != shown:
        wrong.append(server_name)
    print(f"{server_name}")
    print(f"    in the list (GET /servers/detail): {listed.get(server_name)!r}")
    print(f"    shown alone (GET /servers/{{id}}):   {shown!r}"
          f"{'   <-- differs' if listed.get(server_name) != shown else ''}")
print(f"\n{len(wrong)} of {len(ids)} servers listed with a fault that is not their own")
BUG_SEEN = bool(wrong)
