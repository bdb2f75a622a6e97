"""Training glue shared by every family: trainer settings, Lightning, data, seeded draws."""
