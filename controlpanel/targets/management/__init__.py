"""Management commands of the targets app."""
