"""Datasets: rows of inputs and expected outputs, loaded from JSONL / JSON / CSV, with seeded splits."""

from microprompts.data.dataset import Dataset, DatasetError, Row, parse_map, spread_by

__all__ = ["Dataset", "DatasetError", "Row", "parse_map", "spread_by"]
