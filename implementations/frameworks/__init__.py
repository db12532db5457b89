"""Framework adapters: torch, TensorFlow, JAX and ONNX Runtime behind the contract, one module each."""
