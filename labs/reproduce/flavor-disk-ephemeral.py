# Create a flavor whose root disk, ephemeral disk and swap all differ (as
# `openstack flavor create --disk 20 --ephemeral 5 --swap 512 ...` does), then read it back
# the ways a user does: the create response, GET /flavors/{id} (`flavor show`) and
# GET /flavors/detail (`flavor list --long`), at microversion 2.1 and at a recent one.
# Raw REST through the admin session: what nova-api answers, no client in between.
name = "dl.reproduce-flavor"
sent = {"disk": 20, "OS-FLV-EXT-DATA:ephemeral": 5, "swap": 512}
compute = {"service_type": "compute"}


def api(method, url, version="2.1", **kwargs):
    return sess.request(url, method, endpoint_filter=compute, raise_exc=True,
                        headers={"OpenStack-API-Version": f"compute {version}"}, **kwargs)


for old in api("GET", "/flavors/detail?is_public=None").json()["flavors"]:
    if old["name"] == name:
        api("DELETE", f"/flavors/{old['id']}")
created = api("POST", "/flavors", json={"flavor": {"name": name, "ram": 512, "vcpus": 1, **sent}}).json()["flavor"]
seen = {"POST /flavors (create)": created}
for version in ("2.1", "2.75"):
    seen[f"GET /flavors/{{id}}      {version}"] = api("GET", f"/flavors/{created['id']}", version).json()["flavor"]
    listed = api("GET", "/flavors/detail?is_public=None", version).json()["flavors"]
    seen[f"GET /flavors/detail    {version}"] = next(f for f in listed if f["id"] == created["id"])

print(f"flavor {name} ({created['id']}) created with disk={sent['disk']} GiB, "
      f"ephemeral={sent['OS-FLV-EXT-DATA:ephemeral']} GiB, swap={sent['swap']} MiB\n")
print(f"{'request':<28} {'disk':>5} {'ephemeral':>9} {'swap':>5}")
for request, body in seen.items():
    print(f"{request:<28} {body['disk']:>5} {body['OS-FLV-EXT-DATA:ephemeral']:>9} {body['swap']:>5}")
print(f"{'(what was sent)':<28} {sent['disk']:>5} {sent['OS-FLV-EXT-DATA:ephemeral']:>9} {sent['swap']:>5}")

# A flavor nova stores with a 20 GiB root disk is found by minDisk=20, not by minDisk=21.
by_min_disk = {n: [f["id"] for f in api("GET", f"/flavors/detail?is_public=None&minDisk={n}").json()["flavors"]]
               for n in (sent["disk"], sent["disk"] + 1)}
print(f"\nGET /flavors/detail?minDisk=20 lists it: {created['id'] in by_min_disk[20]};"
      f"  ?minDisk=21 lists it: {created['id'] in by_min_disk[21]}")

BUG_SEEN = any(body["disk"] != sent["disk"] or body["OS-FLV-EXT-DATA:ephemeral"] != sent["OS-FLV-EXT-DATA:ephemeral"]
               for body in seen.values())
