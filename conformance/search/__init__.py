"""Random problems: Hypothesis strategies with public bounds, the certification sweep, exploration."""
