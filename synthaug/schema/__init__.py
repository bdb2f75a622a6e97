"""Schemas: what each column (or image) is, inferred from data or declared by the user."""

from synthaug.schema.tabular import KINDS, ColumnSpec, Kind, Schema, arrow_to_base64, infer_schema, read_overrides

__all__ = ["KINDS", "ColumnSpec", "Kind", "Schema", "arrow_to_base64", "infer_schema", "read_overrides"]
