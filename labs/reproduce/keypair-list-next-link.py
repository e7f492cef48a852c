# Page through key pairs one at a time (microversion 2.35 added limit/marker and a
# "next" link), with raw REST through the admin session: no client paging in between.
# Key pair names at 2.35 may not contain dots, so this script's own are dl-reproduce-kp-N.
import urllib.parse

COMPUTE = {"service_type": "compute"}
V = {"OpenStack-API-Version": "compute 2.35"}
names = [f"dl-reproduce-kp-{n}" for n in (1, 2, 3)]

for name in names:  # what a previous run left, then three fresh key pairs
    sess.delete(f"/os-keypairs/{name}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
for name in names:
    sess.post("/os-keypairs", json={"keypair": {"name": name}}, endpoint_filter=COMPUTE, headers=V)

first = sess.get("/os-keypairs?limit=1", endpoint_filter=COMPUTE, headers=V).json()
print("GET /os-keypairs?limit=1  ->", [k["keypair"]["name"] for k in first["keypairs"]])
nexts = [link["href"] for link in first.get("keypairs_links", []) if link.get("rel") == "next"]
print("next link:", nexts[0] if nexts else None)

BUG_SEEN = True
if nexts:
    page = sess.get(nexts[0], headers=V, raise_exc=False)  # the link as given, host and all
    got = [k["keypair"]["name"] for k in page.json().get("keypairs", [])] if page.ok else page.reason
    print(f"GET {urllib.parse.urlsplit(nexts[0]).path}?{urllib.parse.urlsplit(nexts[0]).query}  -> HTTP {page.status_code}", got)
    BUG_SEEN = not page.ok
else:
    print("no next link although more key pairs exist")

for name in names:
    sess.delete(f"/os-keypairs/{name}", endpoint_filter=COMPUTE, headers=V, raise_exc=False)
print("\nexpected: the next link returns the following key pair (HTTP 200)")
