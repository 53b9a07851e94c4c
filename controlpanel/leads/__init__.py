"""The leads' pages: run history, timelines, comparisons, exports, approvals and escalation."""
