"""Reporting: Table 1 from results files (table.py), figures, the HTML page, the paper's own numbers, and
`vidbench leaderboard`, which writes them all (publish.py)."""
