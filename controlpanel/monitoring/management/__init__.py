"""Management commands of the monitoring app."""
