"""Fixtures of the contract tests: each port's implementations, real and fake, side by side.

As APScheduler runs one suite against each of its data stores, every test here takes a fixture
parametrized over the implementations of one port (the in-memory fake of tests/fakes.py and the
real adapter), so the same assertions hold for both.
"""
