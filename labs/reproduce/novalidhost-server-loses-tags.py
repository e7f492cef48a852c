# Boot two servers with the same tags (microversion 2.52 lets `server create --tag`
# send them): one on a flavor the host can hold, one on a flavor with 2 TiB of RAM,
# more than the one compute host has, which the scheduler cannot place: it ends in ERROR
# with "No valid host was found". Then read each server's tags back the two ways a user
# does: GET /servers/{id} (`server show`) and GET /servers/{id}/tags (`server tag list`).
# Raw REST through the admin session: what nova-api answers, no client in between.
import time

COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.52"}
name = "dl.reproduce-tags"
tags = ["dl-web", "dl-prod"]


def api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=COMPUTE, headers=V, **kwargs)


def gone(server_id):
    return api("GET", f"/servers/{server_id}", raise_exc=False).status_code == 404


# what a previous run left: its servers, then its flavor
for old in api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]:
    api("DELETE", f"/servers/{old['id']}", raise_exc=False)
    t0 = time.monotonic()
    while not gone(old["id"]) and time.monotonic() - t0 < 20:
        time.sleep(0.2)
for old in api("GET", "/flavors?is_public=None").json()["flavors"]:
    if old["name"] == f"{name}-xlarge":
        api("DELETE", f"/flavors/{old['id']}")

image = next(i["id"] for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
tiny = next(f["id"] for f in api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
xlarge = api("POST", "/flavors", json={"flavor": {"name": f"{name}-xlarge", "ram": 2 * 1024 * 1024, "vcpus": 8,
                                                  "disk": 1}}).json()["flavor"]["id"]

print(f"tags sent with each boot: {tags}\n")
print(f"{'server':<26} {'flavor':<16} {'status':<7} {'server show: tags':<22} {'server tag list':<22}")
BUG_SEEN = False
for suffix, flavor, flavor_name in (("fits", tiny, "m1.tiny"), ("too-big", xlarge, "(2 TiB of RAM)")):
    body = {"server": {"name": f"{name}-{suffix}", "imageRef": image, "flavorRef": flavor,
                       "networks": "none", "tags": tags}}
    server = api("POST", "/servers", json=body).json()["server"]
    t0 = time.monotonic()
    while True:
        server = api("GET", f"/servers/{server['id']}").json()["server"]
        if server["status"] != "BUILD" or time.monotonic() - t0 > 40:
            break
        time.sleep(0.3)
    listed = api("GET", f"/servers/{server['id']}/tags").json()["tags"]
    print(f"{server['name']:<26} {flavor_name:<16} {server['status']:<7} "
          f"{str(sorted(server.get('tags', []))):<22} {str(sorted(listed)):<22}")
    if server["status"] == "ERROR":
        print(f"{'':<26} fault: {server.get('fault', {}).get('message')}")
    if sorted(server.get("tags", [])) != sorted(tags) or sorted(listed) != sorted(tags):
        BUG_SEEN = True

print("\nexpected: both servers keep the tags they were created with, ACTIVE or ERROR alike")
for old in api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]:
    api("DELETE", f"/servers/{old['id']}", raise_exc=False)
