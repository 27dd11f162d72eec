"""Alembic migrations of the store's schema (applied at every store start: see store/migrate.py)."""
