"""`manage.py bootstrap_demo`: the demo users, roles and target of `make up`."""
