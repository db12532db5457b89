"""The problems the suite runs: the catalogue, scale cases, the regression corpus, shape files, and
case names written and read."""
