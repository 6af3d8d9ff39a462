"""Diagnosis: pure functions from observations, previous state and ``now`` to findings."""
