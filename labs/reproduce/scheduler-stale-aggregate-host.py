# A host is dedicated to the admin project with an aggregate (AggregateMultiTenancyIsolation,
# filter_tenant_id), then taken out of that aggregate again. After that, a server of another
# project (demo) should fit on it. The filter is enabled here with `debuglab cloud config set`
# and a restart, only when the running nova.conf does not have exactly this filter list.
import configparser, subprocess, time
import yaml
from keystoneauth1 import loading, session as ks_session

FILTERS = "ComputeFilter,AggregateMultiTenancyIsolation"
running = configparser.ConfigParser(interpolation=None)
running.read(LAB / "cloud" / "etc" / "nova.conf")  # the nova.conf the cloud runs with
if running.get("filter_scheduler", "enabled_filters", fallback=None) != FILTERS:
    subprocess.run([DEBUGLAB, "cloud", "config", "set", "--dir", str(LAB), "filter_scheduler",
                    "enabled_filters", FILTERS], check=True, capture_output=True)
    subprocess.run([DEBUGLAB, "cloud", "restart", "--dir", str(LAB)], check=True, capture_output=True)
    print(f"[filter_scheduler] enabled_filters = {FILTERS} (set in local.conf; the cloud was restarted to load it)")

demo_auth = yaml.safe_load((LAB / "clouds.yaml").read_text())["clouds"]["devstack"]["auth"]
demo = ks_session.Session(auth=loading.get_plugin_loader("password").load_from_options(**demo_auth))
COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.96"}
NAME, AGG = "dl.reproduce-isolated", "dl.reproduce-dedicated"

def wait(s, sid, until=("ACTIVE", "ERROR"), timeout=40):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        r = s.get(f"/servers/{sid}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
        if r.status_code == 404 or r.json()["server"]["status"] in until:
            return None if r.status_code == 404 else r.json()["server"]
        time.sleep(0.3)
    return r.json()["server"]

def clean():
    for old in demo.get(f"/servers?name=^{NAME}", endpoint_filter=COMPUTE, headers=V).json()["servers"]:
        demo.delete(f"/servers/{old['id']}", endpoint_filter=COMPUTE, headers=V)
        wait(demo, old["id"], ())
    for agg in sess.get("/os-aggregates", endpoint_filter=COMPUTE, headers=V).json()["aggregates"]:
        if agg["name"].startswith("dl.reproduce-"):
            for h in agg["hosts"]:
                sess.post(f"/os-aggregates/{agg['id']}/action", endpoint_filter=COMPUTE, headers=V,
                          json={"remove_host": {"host": h}})
            sess.delete(f"/os-aggregates/{agg['id']}", endpoint_filter=COMPUTE, headers=V)

def boot(n):
    server = demo.post("/servers", endpoint_filter=COMPUTE, headers=V, json={"server": {
        "name": f"{NAME}-{n}", "imageRef": image["id"], "flavorRef": "42", "networks": "none"}}).json()["server"]
    server = wait(demo, server["id"])
    return server["status"], server.get("fault", {}).get("message", "")

clean()  # what a previous run left
image = demo.get("/v2/images?name=cirros-0.6.3-x86_64-disk", endpoint_filter={"service_type": "image"}).json()["images"][0]
host = sess.get("/os-services?binary=nova-compute", endpoint_filter=COMPUTE, headers=V).json()["services"][0]["host"]
admin_project = sess.get_project_id()

try:
    agg = sess.post("/os-aggregates", endpoint_filter=COMPUTE, headers=V, json={"aggregate": {"name": AGG}}).json()["aggregate"]
    act = lambda body: sess.post(f"/os-aggregates/{agg['id']}/action", endpoint_filter=COMPUTE, headers=V, json=body)
    act({"set_metadata": {"metadata": {"filter_tenant_id": admin_project}}})
    act({"add_host": {"host": host}})
    print(f"admin: aggregate {AGG} (filter_tenant_id = admin's project), add host {host}")
    status1, fault1 = boot(1)
    print(f"demo:  boot {NAME}-1 -> {status1:<6} {fault1}   (expected: ERROR, the host is dedicated)")

    hosts = act({"remove_host": {"host": host}}).json()["aggregate"]["hosts"]
    print(f"admin: remove host {host} from {AGG}; its hosts are now {hosts}")
    status2, fault2 = boot(2)
    print(f"demo:  boot {NAME}-2 -> {status2:<6} {fault2}   (expected: ACTIVE, the host is no longer dedicated)")

    clean()  # the aggregate is gone now: the host takes anybody's servers (control)
    status3, fault3 = boot(3)
    print(f"admin: delete {AGG}; demo: boot {NAME}-3 -> {status3:<6} {fault3}   (control: ACTIVE)")
    if status3 != "ACTIVE":
        raise RuntimeError("the host refuses demo's servers even without the aggregate: "
                           "see `debuglab cloud config show` and the n-sch log")
    BUG_SEEN = status2 != "ACTIVE"
finally:
    clean()
