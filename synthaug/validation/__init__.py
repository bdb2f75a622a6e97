"""Checks on synthetic data: expectations (GX), fidelity and privacy metrics."""
