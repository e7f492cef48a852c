# Three ACTIVE servers with different tags, then GET /servers/detail with each tag filter
# of microversion 2.26 (`openstack server list --tags A,B` / `--not-tags A,B`, `nova list
# --tags-any ...`), next to what each filter should return by its documented meaning:
#   tags=A,B       servers that have all of A and B     not-tags=A,B      all but those
#   tags-any=A,B   servers that have A or B             not-tags-any=A,B  servers with neither
# Only this script's servers are compared (the name filter narrows each request to them).
# Raw REST through the admin session: what nova-api answers, no client in between.
import time

COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.96"}
name = "dl.reproduce-tagfilter"
servers = {f"{name}-1": ["dl-a", "dl-b"], f"{name}-2": ["dl-a"], f"{name}-3": ["dl-b"]}


def api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=COMPUTE, headers=V, **kwargs)


def all_mine():  # no tag filter: the plain list
    return api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]


for old in all_mine():  # what a previous run left
    api("DELETE", f"/servers/{old['id']}", raise_exc=False)
t0 = time.monotonic()
while all_mine() and time.monotonic() - t0 < 30:
    time.sleep(0.3)

image = next(i["id"] for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
tiny = next(f["id"] for f in api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
for server_name, tags in servers.items():
    api("POST", "/servers", json={"server": {"name": server_name, "imageRef": image, "flavorRef": tiny,
                                             "networks": "none", "tags": tags}})
t0 = time.monotonic()
while (sorted(s["status"] for s in api("GET", f"/servers/detail?all_tenants=1&name=^{name}").json()["servers"])
       != ["ACTIVE"] * 3) and time.monotonic() - t0 < 40:
    time.sleep(0.3)

print("servers:")
for s in sorted(api("GET", f"/servers/detail?all_tenants=1&name=^{name}").json()["servers"], key=lambda s: s["name"]):
    print(f"  {s['name']:<26} {s['status']:<7} tags {sorted(s['tags'])}")

wanted = {"dl-a", "dl-b"}
expect = {
    "tags=dl-a,dl-b": [n for n, t in servers.items() if wanted <= set(t)],
    "tags=dl-a": [n for n, t in servers.items() if "dl-a" in t],
    "not-tags=dl-a,dl-b": [n for n, t in servers.items() if not wanted <= set(t)],
    "tags-any=dl-a,dl-b": [n for n, t in servers.items() if wanted & set(t)],
    "not-tags-any=dl-a": [n for n, t in servers.items() if "dl-a" not in t],
}
print(f"\n{'GET /servers/detail?...':<24} {'nova-api returns':<20} expected")
BUG_SEEN = False
for query, expected in expect.items():
    got = sorted(s["name"] for s in api("GET", f"/servers/detail?all_tenants=1&name=^{name}&{query}").json()["servers"])
    mark = "" if got == sorted(expected) else "   <-- wrong"
    BUG_SEEN = BUG_SEEN or bool(mark)
    short = lambda names: ", ".join(n.rsplit("-", 1)[1] for n in names) or "(none)"
    print(f"{query:<24} {'servers ' + short(got):<20} servers {short(sorted(expected))}{mark}")

for old in all_mine():
    api("DELETE", f"/servers/{old['id']}", raise_exc=False)
