"""The embedded mini-cloud: Keystone, nova (API, conductor, scheduler, compute with the
fake driver), placement, glance and neutron, from the lab's venv and checkout, on
127.0.0.1, with debugger hooks.

Open first: `supervisor` (start, stop, status, logs of the cloud's processes) and `config`
(the configuration files it writes). What runs inside the cloud's processes is in
`launcher.py` and `services/` (the lab's python; nothing there imports debuglab).
`attach` and `hooks` are the debugger's side, `localconf` DevStack's local.conf, and
`commands` holds `debuglab cloud` and `debuglab attach`.
"""
