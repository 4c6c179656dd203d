"""Prefect tasks: one step each, idempotent, retried by error class (see tasks/retry.py)."""
