"""The student's lab: a DevStack-shaped workspace built from the pinned upstream sdists,
with the bugs planted and one baseline commit per checkout.

Open first: `workspace` (Workspace, `lab create`), then `inject` (planting patches, all or
none, saving student work first), `upstream` (the locked sdists and their cache), `gitrepo`
(baselines, diffs, saved work), `port_registry` (the ports each lab of a machine owns),
`rebuild` (`lab create --force` with running services carried across) and `testing`
(`debuglab test`: nova's visible tests of the checkout). `commands` holds `inject` and `test`.
"""
