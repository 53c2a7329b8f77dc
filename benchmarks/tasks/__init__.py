"""Task definitions used by the benchmark scripts (flows, metrics and seeded data splits)."""
