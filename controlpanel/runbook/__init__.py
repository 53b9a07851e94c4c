"""The runbook as data: phases, steps, their kinds, prerequisites and who may act (pure Python)."""
