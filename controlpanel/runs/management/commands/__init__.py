"""`manage.py runbook`: start, watch, cancel, report and roll back runs from the command line."""
