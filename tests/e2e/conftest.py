"""Fixtures for end-to-end tests: ``simulator``, ``config_path`` and ``start_service`` live in
tests/conftest.py, shared with tests/reliability/."""
