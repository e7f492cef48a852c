"""The bug catalog: `bugs/<id>/` (bug.toml, inject.patch, hidden tests) loaded into frozen
dataclasses, and the instructor's sets (`instructor/sets/`).

Open first: `model` (Bug, Catalog, BugSet: the only place that knows the schema). The
`debuglab bugs` commands are in debuglab.verify.commands, beside the proofs of each bug.
"""
