"""The Triton convolution op: implicit-GEMM kernels, their tile choice, and the ``triton`` plug-in."""
