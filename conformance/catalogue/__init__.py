"""The problems the suite runs: the catalogue, scale cases, shape files, and case names written and read."""
