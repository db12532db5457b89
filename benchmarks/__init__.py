"""convcert benchmarks: workloads, timing and metrics of every implementation."""
