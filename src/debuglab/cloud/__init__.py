"""The embedded mini-cloud: Keystone, nova (API, conductor, scheduler, compute with the
fake driver), placement, glance and neutron, from the lab's venv and checkout, on
127.0.0.1, with debugger hooks."""
