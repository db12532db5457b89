"""Numbers precise enough to act on: fair threads, paired comparisons, an anchor to compare with."""
