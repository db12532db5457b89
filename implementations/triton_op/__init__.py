"""The Triton convolution op, registered as ``triton``; one module per concern.

- ``kernels``: the ``@triton.jit`` kernels (their index formulas in its docstring) and how
  they are built (compiled or interpreted);
- ``tuning``: which tile a launch uses, the autotuner's candidates and the tile cache on disk;
- ``launch``: the launchers: kernel arguments, grids, the pointwise GEMM path, split-K;
- ``ops``: ``torch.ops.convcert.*``, registered with ``torch.library`` when it is imported;
- ``conv``: the plug-ins ``Triton`` and ``TritonTF32`` over those operators.
"""
