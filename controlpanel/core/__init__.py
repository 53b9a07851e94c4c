"""What every app shares: roles, the audit log, the health endpoint, notifications and extension points."""
