# Create a flavor whose root disk, ephemeral disk and swap all differ, then read it back.
name = "dl.reproduce"
for old in nova.flavors.list(is_public=None):
    if old.name == name:
        old.delete()
flavor = nova.flavors.create(name, ram=512, vcpus=1, disk=25, ephemeral=3, swap=0)
shown = nova.flavors.get(flavor.id)
print(f"{'':10} {'sent':>5} {'shown':>5}")
print(f"{'Disk':10} {25:>5} {shown.disk:>5}")
print(f"{'Ephemeral':10} {3:>5} {shown.ephemeral:>5}")
m1_small = nova.flavors.find(name="m1.small")
print(f"m1.small was created with a 20 GiB root disk; the API says Disk = {m1_small.disk}")
