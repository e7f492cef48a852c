# Upload a small image, boot a server from it, delete the image (an old image an
# operator cleans up), then rescue the server without naming a rescue image: nova
# looks for the server's own image, which is gone, so the rescue fails on the compute
# host. What matters is what the server looks like afterwards: its task_state, and
# whether the next action is accepted. Raw REST through the admin session.
import time

COMPUTE = {"service_type": "compute"}
IMAGE = {"service_type": "image"}
V = {"OpenStack-API-Version": "compute 2.53"}  # 2.37+: "networks": "none"
name = "dl.reproduce-rescue"


def api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=COMPUTE, headers=V, raise_exc=False, **kwargs)


def show(server_id):
    return api("GET", f"/servers/{server_id}").json()["server"]


# what a previous run left: its servers (deleting works in any task_state), its image
for old in api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]:
    api("DELETE", f"/servers/{old['id']}")
    t0 = time.monotonic()
    while api("GET", f"/servers/{old['id']}").status_code != 404 and time.monotonic() - t0 < 20:
        time.sleep(0.2)
for old in sess.get("/v2/images", endpoint_filter=IMAGE).json()["images"]:
    if old["name"] == name:
        sess.delete(f"/v2/images/{old['id']}", endpoint_filter=IMAGE, raise_exc=False)

image = sess.post("/v2/images", endpoint_filter=IMAGE,
                  json={"name": name, "disk_format": "raw", "container_format": "bare"}).json()
sess.put(f"/v2/images/{image['id']}/file", endpoint_filter=IMAGE, data=b"\0" * 65536,
         headers={"Content-Type": "application/octet-stream"})
tiny = next(f["id"] for f in api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
server = api("POST", "/servers", json={"server": {"name": name, "imageRef": image["id"], "flavorRef": tiny,
                                                  "networks": "none"}}).json()["server"]
t0 = time.monotonic()
while (server := show(server["id"]))["status"] == "BUILD" and time.monotonic() - t0 < 40:
    time.sleep(0.3)
print(f"server {name} booted from image {name}: {server['status']}")
sess.delete(f"/v2/images/{image['id']}", endpoint_filter=IMAGE)
print(f"image {name} deleted\n")

r = api("POST", f"/servers/{server['id']}/action", json={"rescue": {}})
request_id = r.headers.get("x-openstack-request-id")
print(f"rescue                -> HTTP {r.status_code}   {request_id}")

# wait until nova-compute has finished with the request (its instance action event)
events = []
t0 = time.monotonic()
while time.monotonic() - t0 < 20:
    action = sess.get(f"/servers/{server['id']}/os-instance-actions/{request_id}", endpoint_filter=COMPUTE,
                      headers={"OpenStack-API-Version": "compute 2.84"}).json()  # 2.84: events' details
    events = action.get("instanceAction", {}).get("events", [])
    if events and all(e.get("finish_time") for e in events):
        break
    time.sleep(0.3)
for e in events:
    print(f"    event {e['event']}: {e['result']}   {e.get('details') or ''}")
time.sleep(1)
server = show(server["id"])
task_state = server["OS-EXT-STS:task_state"]
print(f"server afterwards     -> status {server['status']}, vm_state {server['OS-EXT-STS:vm_state']}, "
      f"task_state {task_state}")

r = api("POST", f"/servers/{server['id']}/action", json={"os-stop": None})
print(f"stop                  -> HTTP {r.status_code}   "
      f"{r.json().get('conflictingRequest', {}).get('message', '') if r.status_code == 409 else ''}")

print("\nexpected: the failed rescue gives the server back (task_state None), the stop is accepted (202)")
BUG_SEEN = task_state is not None
api("DELETE", f"/servers/{server['id']}")
