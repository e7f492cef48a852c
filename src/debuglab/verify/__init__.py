"""Proof that every bug behaves as its bug.toml says.

Open first: `checks` (`bugs verify`: pristine, planted, fixed, alternative and wrong fixes,
all together, nova's visible tests, Defects4J-style), then `live` (`bugs verify --live`:
every symptom on a running cloud) and `reproduce` (`debuglab reproduce`: one bug's symptom
on the lab's cloud). `commands` holds `debuglab bugs list|show|sets|verify` and
`debuglab reproduce`.
"""
