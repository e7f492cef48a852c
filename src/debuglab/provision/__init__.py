"""A class over SSH (fabric): lab hosts and DevStack VMs provisioned, collected, reset,
tunnelled; the class's VMs booted through python-novaclient.

Open first: `commands` (`provision`, `collect`, `reset`, `tunnel`, `class up|down`), then
`engine` (one host's provisioning, step by step), `inventory` (the class file), `hosts`
(SSH connections and their errors) and `classroom` (the VMs). `agent` runs on the hosts
(standard library and the kit's own stdlib-only modules); everything else runs on the
instructor's machine. Keep this file free of imports: the agent is started as
`python3 -m debuglab.provision.agent` on hosts without fabric.
"""
