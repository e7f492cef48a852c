"""Provisioning a class of lab hosts over SSH (fabric): DevStack VMs and debuglab lab hosts.

`agent` runs on the hosts (standard library and the kit's own stdlib-only modules);
everything else runs on the instructor's machine. Keep this file free of imports: the
agent is started as `python3 -m debuglab.provision.agent` on hosts without fabric.
"""
