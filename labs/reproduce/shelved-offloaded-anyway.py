# Configure nova-compute as in the story: shelved servers are never offloaded
# ([DEFAULT] shelved_offload_time = -1), and the compute host looks at its shelved
# servers every few seconds (shelved_poll_interval = 3 instead of an hour;
# periodic_fuzzy_delay = 0 so that the periodic tasks start right after a restart).
# On DevStack that is nova-cpu.conf; here it goes into the lab's local.conf with
# `debuglab cloud config set`, and a restart loads it. Then shelve a server and watch
# its status for 15 seconds (raw REST, as `openstack server show` does).
# At the end the configuration is put back as it was (one more restart); set
# KEEP_CONFIG = True to keep it for live debugging (then `debuglab cloud config unset
# --dir LAB DEFAULT ...` when you are done).
import configparser, subprocess, time

KEEP_CONFIG = False
WATCH = 15  # seconds: five times the poll interval
name = "dl.reproduce-shelve"
COMPUTE = {"service_type": "compute"}
IMAGE = {"service_type": "image"}
V = {"OpenStack-API-Version": "compute 2.53"}  # 2.37+: "networks": "none"


def api(method, url, **kwargs):
    return sess.request(url, method, endpoint_filter=COMPUTE, headers=V, raise_exc=False, **kwargs)


def config(*args):
    subprocess.run([DEBUGLAB, "cloud", *args], check=True, capture_output=True)


def set_option(option, value):  # "--" lets a value such as -1 through
    if value is None:
        config("config", "unset", "--dir", str(LAB), "DEFAULT", option)
    else:
        config("config", "set", "--dir", str(LAB), "--", "DEFAULT", option, value)


def clean_up():
    for old in api("GET", f"/servers?all_tenants=1&name=^{name}").json()["servers"]:
        api("DELETE", f"/servers/{old['id']}")
        t0 = time.monotonic()
        while api("GET", f"/servers/{old['id']}").status_code != 404 and time.monotonic() - t0 < 20:
            time.sleep(0.2)
    for old in sess.get("/v2/images", endpoint_filter=IMAGE).json()["images"]:
        if old["name"].startswith(name):  # the shelve snapshot: "<server>-shelved"
            sess.delete(f"/v2/images/{old['id']}", endpoint_filter=IMAGE, raise_exc=False)


clean_up()  # what a previous run left
wanted = {"shelved_offload_time": "-1", "shelved_poll_interval": "3", "periodic_fuzzy_delay": "0"}
running = configparser.ConfigParser(interpolation=None)
running.read(LAB / "cloud" / "etc" / "nova.conf")  # the nova.conf the cloud runs with
before = {k: running.get("DEFAULT", k, fallback=None) for k in wanted}
changed = before != wanted
if changed:
    for option, value in wanted.items():
        set_option(option, value)
    config("restart", "--dir", str(LAB))
print("[DEFAULT] " + ", ".join(f"{k} = {v}" for k, v in wanted.items()) + "\n")

image = next(i["id"] for i in sess.get("/v2/images", endpoint_filter=IMAGE).json()["images"]
             if i["name"] == "cirros-0.6.3-x86_64-disk")
tiny = next(f["id"] for f in api("GET", "/flavors").json()["flavors"] if f["name"] == "m1.tiny")
server = api("POST", "/servers", json={"server": {"name": name, "imageRef": image, "flavorRef": tiny,
                                                  "networks": "none"}}).json()["server"]
t0 = time.monotonic()
while (server := api("GET", f"/servers/{server['id']}").json()["server"])["status"] == "BUILD" \
        and time.monotonic() - t0 < 40:
    time.sleep(0.3)
print(f"server {name}: {server['status']}")

r = api("POST", f"/servers/{server['id']}/action", json={"shelve": None})
print(f"shelve -> HTTP {r.status_code}   {r.headers.get('x-openstack-request-id')}\n")
seen, last = [], None
t0 = time.monotonic()
while time.monotonic() - t0 < WATCH:
    s = api("GET", f"/servers/{server['id']}").json()["server"]
    now = (s["status"], s["OS-EXT-STS:task_state"])
    if now != last:
        print(f"  t = {time.monotonic() - t0:5.1f} s   status {now[0]:<18} task_state {now[1]}")
        seen.append(now[0])
        last = now
    if now[0] == "SHELVED_OFFLOADED":
        break
    time.sleep(0.3)
print(f"  t = {time.monotonic() - t0:5.1f} s   status {last[0]:<18} task_state {last[1]}")
print(f"\nexpected: SHELVED for good (shelved_offload_time = -1: never offload)")
BUG_SEEN = "SHELVED_OFFLOADED" in seen

clean_up()
if changed and not KEEP_CONFIG:
    for option, value in before.items():
        set_option(option, value)
    config("restart", "--dir", str(LAB))
    print("(nova-compute's configuration is back as it was)")
