"""Revisions, oldest first: 0001 is the schema of the last release made before migrations (ea0db2c)."""
