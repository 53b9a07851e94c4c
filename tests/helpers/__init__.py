"""Shared test helpers: target building, the bundle cycle, platform roles, waiting for the worker."""
