"""The mini-cloud's services, one module each, run by `../launcher.py` under the lab's python.

These modules import nothing from debuglab (only the standard library, the OpenStack
services and each other, relatively): the launcher loads this folder as the package
`debuglab_cloud_services`. Start with `process.py` (what every service process shares),
then the service you care about: `keystone.py`, `nova.py` (with `fakehost.py`),
`glance.py`, `neutron.py`. `wsgi.py`, `sqlite.py` and `stackroom.py` are the plumbing
they share.
"""
