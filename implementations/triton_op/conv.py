"""``triton``: the implicit-GEMM Triton convolution (``torch.ops.convcert.conv2d``) as a convcert plug-in."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..contract import Implementation
from ..dtypes import dtype_name, numpy_dtype
from ..frameworks.torch_adapter import numpy_from_tensor, tensor_from_numpy
from ..geometry import ConvParams
from .ops import bias_grad


class Triton(Implementation):
    """Implicit-GEMM Triton kernels behind ``torch.ops.convcert.conv2d``.

    Devices: ``cuda`` when torch sees a GPU; ``cpu`` only when triton was imported with
    ``TRITON_INTERPRET=1`` (the Triton interpreter: the same kernels, slowly). Triton fixes
    that mode for the whole process, and a normal CPU run of the conformance matrix should
    not spend minutes interpreting GPU code anyway.

    dtypes: float32 (IEEE fp32 products unless ``allow_tf32``), float16 and bfloat16 on
    tensor cores with float32 accumulation, float64 by FMA (no tensor cores; correct, slow).
    """

    name = "triton"
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset({"conv2d", "conv2d_backward", "stride", "dilation", "groups", "asymmetric_padding"})

    def __init__(self, allow_tf32: bool = False):
        self.allow_tf32 = bool(allow_tf32)
        if self.allow_tf32:
            self.reduced_precision = {"float32": "tf32"}
        from .kernels import interpreting

        self.devices = (("cpu",) if interpreting() else ()) + (("cuda",) if torch.cuda.is_available() else ())

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> torch.Tensor:
        self._check_device(device)
        numpy_dtype(dtype_name(array))  # ValueError unless a contract dtype
        t = tensor_from_numpy(array)
        return t.to(device).clone() if device == "cpu" else t.to(device)

    def to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        return numpy_from_tensor(tensor.detach().cpu())

    def synchronize(self, device: str) -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    # -- operations ------------------------------------------------------------------
    @staticmethod
    def _args(params: ConvParams) -> tuple[list[int], list[int], list[int], int]:
        (top, bottom), (left, right) = params.padding
        return list(params.stride), [top, bottom, left, right], list(params.dilation), params.groups

    def conv2d(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
               params: ConvParams) -> torch.Tensor:
        return torch.ops.convcert.conv2d(x, w, b, *self._args(params), allow_tf32=self.allow_tf32)

    def conv2d_backward(self, x: torch.Tensor, w: torch.Tensor, dy: torch.Tensor, params: ConvParams):
        args = self._args(params)
        ops, tf32 = torch.ops.convcert, self.allow_tf32
        dx = ops.conv2d_backward_input(dy, w, list(params.x_shape), *args, allow_tf32=tf32)
        dw = ops.conv2d_backward_weight(dy, x, list(params.w_shape), *args, allow_tf32=tf32)
        return dx, dw, bias_grad(dy)

    # -- description -----------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        import triton

        from .kernels import interpreting
        from .launch import chosen_configs

        env: dict[str, Any] = {
            "numpy": np.__version__,
            "torch": torch.__version__,
            "triton": triton.__version__,
            "interpreter": interpreting(),
            "allow_tf32": self.allow_tf32,
            "autotune_chosen": chosen_configs(),
        }
        if torch.cuda.is_available():
            env["cuda"] = torch.version.cuda
            env["gpu"] = torch.cuda.get_device_name()
        return env


class TritonTF32(Triton):
    """``triton`` with float32 products on TF32 tensor cores (judged at TF32 precision)."""

    name = "triton_tf32"

    def __init__(self) -> None:
        super().__init__(allow_tf32=True)
