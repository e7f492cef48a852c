"""The embedded mini-cloud: Keystone and nova (API, conductor, scheduler, compute with the
fake driver) plus placement, from the lab's checkout, on 127.0.0.1, with debugger hooks."""
