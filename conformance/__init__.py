"""convcert conformance: the case catalogue, golden references, error bounds and certification."""
