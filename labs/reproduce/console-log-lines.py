# Boot a server and read its console log twice, as `openstack console log show` does:
# the whole log, then only its last 2 lines (`--lines 2`, the request's "length").
# Raw REST through the admin session (POST /servers/{id}/action os-getConsoleOutput):
# what nova-api answers, no client in between.
import time

COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.53"}  # 2.37+: "networks": "none"
name = "dl.reproduce-console"


def api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=COMPUTE, headers=V, raise_exc=False, **kwargs)


# what a previous run left
for old in api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]:
    api("DELETE", f"/servers/{old['id']}")
    t0 = time.monotonic()
    while api("GET", f"/servers/{old['id']}").status_code != 404 and time.monotonic() - t0 < 20:
        time.sleep(0.2)

image = next(i["id"] for i in sess.get("/v2/images", endpoint_filter={"service_type": "image"}).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
tiny = next(f["id"] for f in api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
server = api("POST", "/servers", json={"server": {"name": name, "imageRef": image, "flavorRef": tiny,
                                                  "networks": "none"}}).json()["server"]
t0 = time.monotonic()
while True:
    server = api("GET", f"/servers/{server['id']}").json()["server"]
    if server["status"] != "BUILD" or time.monotonic() - t0 > 40:
        break
    time.sleep(0.3)
print(f"server {server['name']}: {server['status']}\n")


def console(length):
    body = {"os-getConsoleOutput": {} if length is None else {"length": length}}
    r = api("POST", f"/servers/{server['id']}/action", json=body)
    output = r.json()["output"] if r.status_code == 200 else None
    return r.status_code, output, r.json(), r.headers.get("x-openstack-request-id")


status, whole, _, request_id = console(None)
print(f"console log (whole)    -> HTTP {status}   {request_id}")
for line in (whole or "").splitlines():
    print(f"    {line}")
status, tail, error, request_id = console(2)
print(f"console log, length 2  -> HTTP {status}   {request_id}")
if tail is not None:
    for line in tail.splitlines():
        print(f"    {line}")
else:
    print(f"    {error}")

expected = "\n".join((whole or "").split("\n")[-2:])
print(f"\nexpected: HTTP 200 and the last 2 lines of the log: {expected!r}")
BUG_SEEN = tail != expected
api("DELETE", f"/servers/{server['id']}")
