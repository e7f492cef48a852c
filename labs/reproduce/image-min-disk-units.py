# Boot a server from an image that declares how much disk it needs (min_disk, in GiB), with a
# flavor of 5 GiB of root disk, for a few min_disk values, and see what nova-api answers.
# Raw REST through the admin session (what nova-api and the image service answer, no client in
# between): `openstack image set --min-disk N` and `openstack server create` do the same.
import time

name = "dl.reproduce-min-disk"
FLAVOR_DISK = 5  # GiB: the flavor is created here, so its size is known without asking nova
compute, image_api = {"service_type": "compute"}, {"service_type": "image"}
MICROVERSION = {"OpenStack-API-Version": "compute 2.37"}  # 2.37: "networks": "none"


def nova_api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=compute, headers=MICROVERSION, **kwargs)


def servers_named():
    return nova_api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]


def wait_gone(ids, seconds=30):
    t0 = time.monotonic()
    while set(ids) & {s["id"] for s in servers_named()} and time.monotonic() - t0 < seconds:
        time.sleep(0.3)


# What a previous run left.
old_servers = servers_named()
for server in old_servers:
    nova_api("DELETE", f"/servers/{server['id']}")
wait_gone([s["id"] for s in old_servers])
for old in sess.get(f"/v2/images?name={name}", endpoint_filter=image_api).json()["images"]:
    sess.delete(f"/v2/images/{old['id']}", endpoint_filter=image_api)
for old in nova_api("GET", "/flavors?is_public=None").json()["flavors"]:
    if old["name"] == name:
        nova_api("DELETE", f"/flavors/{old['id']}")

flavor = nova_api("POST", "/flavors", json={"flavor": {"name": name, "ram": 128, "vcpus": 1,
                                                        "disk": FLAVOR_DISK}}).json()["flavor"]
image = sess.post("/v2/images", endpoint_filter=image_api,
                  json={"name": name, "disk_format": "raw", "container_format": "bare"}).json()
sess.put(f"/v2/images/{image['id']}/file", endpoint_filter=image_api, data=b"\0" * 65536,
         headers={"Content-Type": "application/octet-stream"})
print(f"flavor {name}: {FLAVOR_DISK} GiB root disk; image {name}: 64 KiB\n")
print(f"{'image min_disk':>14}  {'expected':<9} nova-api's answer to POST /servers")

wrong, booted = [], []
for min_disk in (1, 5, 6, 10, 40):
    sess.patch(f"/v2/images/{image['id']}", endpoint_filter=image_api,  # openstack image set --min-disk N
               json=[{"op": "replace", "path": "/min_disk", "value": min_disk}],
               headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
    expected = "accepted" if min_disk <= FLAVOR_DISK else "refused"
    resp = nova_api("POST", "/servers", raise_exc=False, json={"server": {
        "name": f"{name}-{min_disk}", "imageRef": image["id"], "flavorRef": flavor["id"], "networks": "none"}})
    if resp.status_code == 202:
        answer = "accepted"
        booted.append(resp.json()["server"]["id"])
        nova_api("DELETE", f"/servers/{booted[-1]}")  # the answer is what matters; the host keeps its room
    else:
        answer = "refused"
    message = resp.json().get("badRequest", {}).get("message", "") if answer == "refused" else ""
    print(f"{min_disk:>10} GiB  {expected:<9} {resp.status_code} {answer}  {message}")
    if answer != expected:
        wrong.append(min_disk)
wait_gone(booted)

BUG_SEEN = bool(wrong)
