# A project member (demo) resizes its server into a flavor that is private to another
# project (admin's). The lab has one compute host: its nova.conf allows a resize to the
# same host, as DevStack's does ([DEFAULT] allow_resize_to_same_host = True).
# Raw REST through keystoneauth sessions: no client resolves the flavor first.
import time
import yaml
from keystoneauth1 import loading, session as ks_session

demo_auth = yaml.safe_load((LAB / "clouds.yaml").read_text())["clouds"]["devstack"]["auth"]
demo = ks_session.Session(auth=loading.get_plugin_loader("password").load_from_options(**demo_auth))
COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.96"}
NAME, FLAVOR = "dl.reproduce-resize", "dl.reproduce-private"

def servers(s):
    return [x for x in s.get(f"/servers?name=^{NAME}", endpoint_filter=COMPUTE, headers=V).json()["servers"]]

def wait(s, sid, until, timeout=40):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = s.get(f"/servers/{sid}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
        if r.status_code == 404 or r.json()["server"]["status"] in until:
            return None if r.status_code == 404 else r.json()["server"]
        time.sleep(0.3)
    return r.json()["server"]

for old in servers(demo):  # what a previous run left
    demo.delete(f"/servers/{old['id']}", endpoint_filter=COMPUTE, headers=V)
    wait(demo, old["id"], ())
sess.delete(f"/flavors/{FLAVOR}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)

# admin: a private flavor, on the access list of the admin project only
admin_project = sess.get_project_id()
sess.post("/flavors", endpoint_filter=COMPUTE, headers=V, json={"flavor": {
    "name": FLAVOR, "id": FLAVOR, "ram": 256, "vcpus": 1, "disk": 1, "os-flavor-access:is_public": False}})
sess.post(f"/flavors/{FLAVOR}/action", endpoint_filter=COMPUTE, headers=V,
          json={"addTenantAccess": {"tenant": admin_project}})

# demo: a server on a public flavor
image = demo.get("/v2/images?name=cirros-0.6.3-x86_64-disk", endpoint_filter={"service_type": "image"}).json()["images"][0]
server = demo.post("/servers", endpoint_filter=COMPUTE, headers=V, json={"server": {
    "name": NAME, "imageRef": image["id"], "flavorRef": "42", "networks": "none"}}).json()["server"]
server = wait(demo, server["id"], ("ACTIVE", "ERROR"))
print(f"demo's server {NAME}: {server['status']}, flavor {server['flavor']['original_name']}")
if server["status"] != "ACTIVE":  # e.g. another lab exercise left a filter that refuses it
    raise RuntimeError(f"demo's server did not boot, nothing to resize: {server.get('fault', {}).get('message')}"
                       " (see `debuglab cloud config show`)")

seen = demo.get(f"/flavors/{FLAVOR}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
print(f"demo: GET /flavors/{FLAVOR} -> HTTP {seen.status_code}")
r = demo.post(f"/servers/{server['id']}/action", endpoint_filter=COMPUTE, headers=V, raise_exc=False,
              json={"resize": {"flavorRef": FLAVOR}})
print(f"demo: POST /servers/{{id}}/action resize to {FLAVOR} -> HTTP {r.status_code} "
      + (r.json().get("badRequest", {}).get("message", "") if r.status_code == 400 else ""))
if r.status_code == 202:
    after = wait(demo, server["id"], ("VERIFY_RESIZE", "ACTIVE", "ERROR"))
    print(f"demo's server now: {after['status']}, flavor {after['flavor']['original_name']}")
BUG_SEEN = r.status_code == 202

for old in servers(demo):
    demo.delete(f"/servers/{old['id']}", endpoint_filter=COMPUTE, headers=V)
    wait(demo, old["id"], ())
sess.delete(f"/flavors/{FLAVOR}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
print("\nexpected: HTTP 400 (the flavor does not exist for demo's project), the server stays on m1.nano")
