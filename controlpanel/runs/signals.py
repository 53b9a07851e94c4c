"""Hooks other areas listen to (evidence snapshots, post-migration tasks, notifications)."""

from django.dispatch import Signal

# Sent in the worker after an attempt ended, with attempt= (status already saved).
attempt_finished = Signal()
# Sent when a run's forward steps all succeeded, with run=.
run_completed = Signal()
