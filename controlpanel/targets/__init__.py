"""The target registry and everything that talks to a target database (connections, catalog, SQL, seeding)."""
