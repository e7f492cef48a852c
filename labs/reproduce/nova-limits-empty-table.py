# `nova limits` (the nova CLI of the lab venv, python-novaclient from lab/stack/python-novaclient)
# next to what nova-api itself answers to GET /limits (raw REST through the admin session).
import os, subprocess

env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
env.update(OS_AUTH_URL=cloud["auth"]["auth_url"], OS_USERNAME=cloud["auth"]["username"],
           OS_PASSWORD=cloud["auth"]["password"], OS_PROJECT_NAME=cloud["auth"]["project_name"],
           OS_USER_DOMAIN_NAME=cloud["auth"]["user_domain_name"],
           OS_PROJECT_DOMAIN_NAME=cloud["auth"]["project_domain_name"],
           OS_REGION_NAME=cloud["region_name"], OS_IDENTITY_API_VERSION="3")
cli = subprocess.run([str(LAB / "venv" / "bin" / "nova"), "limits"], env=env,
                     capture_output=True, text=True, timeout=50)
print("$ nova limits")
print(cli.stdout.rstrip() or cli.stderr.rstrip())

# the absolute-limits table is the last one: its rows are | Name | Used | Max |
shown, header = {}, None
for line in cli.stdout.splitlines():
    if line.startswith("|"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in ("Verb", "Name"):
            header, shown = cells, {}
        elif header and header[0] == "Name":
            shown[cells[0]] = dict(zip(header, cells))

absolute = sess.get("/limits", endpoint_filter={"service_type": "compute"},
                    headers={"OpenStack-API-Version": "compute 2.96"}).json()["limits"]["absolute"]
# the row each of nova's keys belongs to in `nova limits`, and in which column
rows = {"Cores": ("totalCoresUsed", "maxTotalCores"), "Instances": ("totalInstancesUsed", "maxTotalInstances"),
        "RAM": ("totalRAMUsed", "maxTotalRAMSize"), "Keypairs": (None, "maxTotalKeypairs"),
        "Server Meta": (None, "maxServerMeta"), "ServerGroups": ("totalServerGroupsUsed", "maxServerGroups"),
        "ServerGroupMembers": (None, "maxServerGroupMembers")}
print("\nGET /limits answered (absolute):")
print(f"{'row':<20} {'nova-api used/max':>18}   {'nova limits used/max':>20}")
wrong = []
for name, (used_key, max_key) in rows.items():
    if max_key not in absolute:
        continue
    api = (str(absolute[used_key]) if used_key in absolute else "-", str(absolute[max_key]))
    cli_row = shown.get(name)
    got = (cli_row["Used"], cli_row["Max"]) if cli_row else ("(no row)", "")
    mark = "" if got == api else "   <-- differs"
    if got != api:
        wrong.append(name)
    print(f"{name:<20} {'/'.join(api):>18}   {'/'.join(got).rstrip('/'):>20}{mark}")
print(f"\n{len(wrong)} of {len(rows)} limits shown differently from what nova-api answered")
BUG_SEEN = bool(wrong)
