"""`manage.py healthcheck`: a target's health check from the command line."""
