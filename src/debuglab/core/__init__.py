"""Plumbing every capability uses; it imports nothing from the rest of the kit.

Open first: `proc` (the one subprocess helper), `errors` (the typed errors the CLI turns
into messages and exit codes), `kit` (where the kit's files are). Then `testrun` (nova's
tests in a lab-venv worker, read from subunit), `forkserver` (the grader's warm worker) and
`_worker` (what runs inside the lab venv), `service` (a background service's pidfile, log
and spawn), `processes` (/proc: sessions and ports), `files` and `private` (atomic and
owner-only writes), `console` and `options` (what the commands print with and share).
"""
