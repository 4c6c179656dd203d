"""Command modules of the `tkeflow` CLI; each exposes ``register(app)`` (see tkeflow/cli.py)."""
