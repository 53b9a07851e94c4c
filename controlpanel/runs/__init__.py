"""Runs, steps and attempts: the engine that records intents, the runner that executes them in a worker."""
