"""What judges a bundle before it runs and undoes it after: preflight, rehearsal on a copy, rollbacks."""
