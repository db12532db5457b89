"""Random problems: Hypothesis strategies with public bounds, the sweep's seeded draws and shrinking,
exploration."""
