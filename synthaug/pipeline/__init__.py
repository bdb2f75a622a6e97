"""A run as typed stages (stages.py) ordered by run.py."""
