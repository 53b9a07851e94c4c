"""The refusal every state change raises: its own module so gates and their checks can share it without a cycle."""


class StepRefused(Exception):
    """The action cannot be taken; the message says why, for the person who asked."""
