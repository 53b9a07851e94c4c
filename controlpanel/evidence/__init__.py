"""Proof that the migration worked: snapshots, reconciliation, RLS audit, isolation probes, timing, scorecard."""
