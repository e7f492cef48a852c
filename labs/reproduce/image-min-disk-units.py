# Boot m1.small (20 GiB of disk) from an image that declares how much disk it needs
# (min_disk, in GiB), for a few sizes, and see what nova-api answers.
# The image is made with openstacksdk on the same session (the image service is glance's
# API: `openstack image create/set --min-disk N` do the same from a terminal).
import time
import openstack
from novaclient import exceptions as nova_exc

conn = openstack.connection.Connection(session=sess, region_name=cloud["region_name"])
name = "dl.reproduce-min-disk"
for old in nova.servers.list(search_opts={"name": f"^{name}"}):
    old.delete()
for old in conn.image.images(name=name):
    conn.image.delete_image(old)
image = conn.image.create_image(name, data=b"\0" * 65536, disk_format="raw", container_format="bare",
                                validate_checksum=False)
flavor, flavor_disk = nova.flavors.find(name="m1.small"), 20  # DevStack's m1.small: 20 GiB root disk
print(f"flavor {flavor.name}: {flavor_disk} GiB of disk\n")
print(f"{'image min_disk':>14}  {'expected':<9} nova-api's answer")
for min_disk in (10, 20, 40, 100, 30000):
    conn.image.update_image(image, min_disk=min_disk)  # openstack image set --min-disk N
    expected = "accepted" if min_disk <= flavor_disk else "refused"
    try:
        server = nova.servers.create(f"{name}-{min_disk}", image=image.id, flavor=flavor.id, nics="none")
    except nova_exc.BadRequest as exc:
        answer = f"refused: {exc}"
    else:
        t0 = time.monotonic()
        while server.status == "BUILD" and time.monotonic() - t0 < 60:
            time.sleep(0.2)
            server = nova.servers.get(server.id)
        answer = f"accepted (202), server {server.name} went {server.status}"
        if server.status == "ERROR":
            answer += f" ({getattr(server, 'fault', {}).get('message')})"
        server.delete()  # the answer is what matters; the host keeps its room
    print(f"{min_disk:>10} GiB  {expected:<9} {answer}")
