"""`manage.py build_target` and `seed_target`: local targets shaped like real installations."""
