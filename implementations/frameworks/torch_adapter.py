"""``torch``: PyTorch's ``conv2d``, ``max_pool2d`` and ``avg_pool2d`` behind the contract.

Tensors stay NCHW (PyTorch's own layout). Geometry comes resolved; the adapter passes
symmetric padding to the op and pads explicitly otherwise:

- convolution: symmetric padding goes to the op, asymmetric padding through ``F.pad``;
  the backward pass is ``aten.convolution_backward`` (no forward recomputation);
- max pooling (dilation included): the op's padding when it is symmetric and at most half
  the kernel (the op's own limit), otherwise ``F.pad`` with -inf up to the windows' extent;
- average pooling: the op (with its own ``ceil_mode`` and ``count_include_pad``, whose
  rules are the contract's) under the same condition; ``avg_pool2d`` has no dilation, so
  a dilated window is gathered by ``F.unfold`` (which has) and summed; otherwise window sums
  (``divisor_override=1``) of the zero-padded input divided by the counts of
  ``geometry.pool_counts``;
- pooling gradients come from autograd (max pooling needs the forward's indices anyway).

Precision flags are explicit and applied on every CUDA call, so another library's global
setting cannot leak in: TF32 is off unless ``tf32=True`` (or ``CONVCERT_TORCH_TF32=1``),
and then ``reduced_precision`` says ``float32`` runs as TF32; cuDNN benchmark mode is off
unless ``cudnn_benchmark=True`` (or ``CONVCERT_CUDNN_BENCHMARK=1``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..contract import FEATURES, Implementation, Limit, Unsupported
from ..geometry import ConvParams, PoolParams, dtype_name, pool_counts
from ..host import cpu_name, env_flag


def tensor_from_numpy(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory (C-contiguous); bfloat16 moves as its bits,
    since ``torch.from_numpy`` knows no ml_dtypes bfloat16."""
    array = np.ascontiguousarray(array)
    if dtype_name(array) == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def numpy_from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """The NumPy view of a CPU tensor; bfloat16 comes back as ml_dtypes bfloat16."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _torch_pad(padding) -> tuple[int, int, int, int]:
    """``((top, bottom), (left, right))`` in ``F.pad`` order (left, right, top, bottom)."""
    (top, bottom), (left, right) = padding
    return left, right, top, bottom


def _native_pool(p: PoolParams) -> bool:
    """Whether the pooling op's own padding argument expresses ``p.padding``."""
    return p.is_symmetric and all(2 * pair[0] <= k for pair, k in zip(p.padding, p.kernel, strict=True))


class Torch(Implementation):
    """PyTorch on CPU and, when ``torch.cuda.is_available()``, CUDA."""

    name = "torch"
    dtypes = ("float64", "float32", "float16", "bfloat16")
    features = frozenset(FEATURES)

    def __init__(self, tf32: bool | None = None, cudnn_benchmark: bool | None = None):
        self.tf32 = env_flag("CONVCERT_TORCH_TF32") if tf32 is None else bool(tf32)
        self.cudnn_benchmark = (
            env_flag("CONVCERT_CUDNN_BENCHMARK") if cudnn_benchmark is None else bool(cudnn_benchmark)
        )
        self.devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        if "cuda" in self.devices and not torch.cuda.is_bf16_supported():
            self.limits = (Limit(f"{torch.cuda.get_device_name()} has no bfloat16 support (pre-Ampere)",
                                 dtypes="bfloat16", devices="cuda"),)
        # The contract keys reduced precision by dtype only; TF32 affects CUDA alone, so
        # CPU float32 results are then judged at TF32 precision too (looser, never wrong).
        # torch 2.13 on the CPU rounds half-precision partial sums to the dtype (float16
        # convolution gradients up to 140x, bfloat16 average-pool gradients up to 350x the
        # float32-accumulation bound on the catalogue), so both are declared, for CUDA as
        # well: the contract keys reduced precision by dtype, not by device.
        halves = {"float16": "float16", "bfloat16": "bfloat16"}
        self.reduced_precision = MappingProxyType({"float32": "tf32", **halves} if self.tf32 else halves)

    # -- data movement ---------------------------------------------------------------
    def to_device(self, array: np.ndarray, device: str) -> torch.Tensor:
        self._check_device(device)
        array = np.array(array, copy=True, order="C")  # the tensor must not alias the caller's array
        return tensor_from_numpy(array).to(device)

    def to_numpy(self, tensor: torch.Tensor) -> np.ndarray:
        return numpy_from_tensor(tensor.detach().cpu()).copy()

    def synchronize(self, device: str) -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def _prepare(self, x: torch.Tensor) -> None:
        """Apply this adapter's precision flags before a CUDA call; refuse what the GPU lacks."""
        if x.device.type != "cuda":
            return
        if x.dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise Unsupported(f"{torch.cuda.get_device_name(x.device)} has no bfloat16 support")
        precision = "tf32" if self.tf32 else "ieee"
        if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9; mixing with allow_tf32 is an error
            torch.backends.cudnn.conv.fp32_precision = precision
            torch.backends.cuda.matmul.fp32_precision = precision
        else:
            torch.backends.cudnn.allow_tf32 = self.tf32
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.benchmark = self.cudnn_benchmark

    # -- convolution -----------------------------------------------------------------
    @staticmethod
    def _conv_input(x: torch.Tensor, p: ConvParams) -> tuple[torch.Tensor, tuple[int, int]]:
        """The input and the padding to hand the op: explicit ``F.pad`` when asymmetric."""
        if p.is_symmetric:
            return x, (p.padding[0][0], p.padding[1][0])
        return F.pad(x, _torch_pad(p.padding)), (0, 0)

    def conv2d(self, x, w, b, params: ConvParams):
        self._prepare(x)
        xp, pad = self._conv_input(x, params)
        return F.conv2d(xp, w, b, params.stride, pad, params.dilation, params.groups)

    def conv2d_backward(self, x, w, dy, params: ConvParams):
        self._prepare(x)
        xp, pad = self._conv_input(x, params)
        dx, dw, db = torch.ops.aten.convolution_backward(
            dy, xp, w, [params.w_shape[0]], list(params.stride), list(pad),
            list(params.dilation), False, [0, 0], params.groups, [True, True, True],
        )
        if not params.is_symmetric:
            (top, _), (left, _) = params.padding
            dx = dx[:, :, top:top + params.x_shape[2], left:left + params.x_shape[3]]
        return dx, dw, db

    # -- pooling ---------------------------------------------------------------------
    @staticmethod
    def _pad_to_extent(x: torch.Tensor, p: PoolParams, value: float) -> torch.Tensor:
        return F.pad(x, _torch_pad(p.window_padding), value=value)

    def max_pool2d(self, x, params: PoolParams):
        self._prepare(x)
        p = params
        if _native_pool(p):
            return F.max_pool2d(x, p.kernel, p.stride, (p.padding[0][0], p.padding[1][0]), p.dilation,
                                ceil_mode=p.ceil_mode)
        return F.max_pool2d(self._pad_to_extent(x, p, float("-inf")), p.kernel, p.stride, 0, p.dilation)

    def avg_pool2d(self, x, params: PoolParams):
        self._prepare(x)
        p = params
        if p.dilation != (1, 1):
            return self._dilated_window_sums(self._pad_to_extent(x, p, 0.0), p) / self._window_counts(x, p)
        if _native_pool(p):
            return F.avg_pool2d(x, p.kernel, p.stride, (p.padding[0][0], p.padding[1][0]),
                                ceil_mode=p.ceil_mode, count_include_pad=p.count_include_pad)
        sums = F.avg_pool2d(self._pad_to_extent(x, p, 0.0), p.kernel, p.stride, divisor_override=1)
        return sums / self._window_counts(x, p)

    @staticmethod
    def _dilated_window_sums(xp: torch.Tensor, p: PoolParams) -> torch.Tensor:
        """Window sums of the padded input with dilated windows: ``F.avg_pool2d`` has no
        dilation, so each window is gathered by ``F.unfold`` (which has) and summed, in
        float32 for float16/bfloat16 as PyTorch's own pooling accumulates."""
        n, c = xp.shape[:2]
        acc = torch.float32 if xp.dtype in (torch.float16, torch.bfloat16) else xp.dtype
        cols = F.unfold(xp.reshape(n * c, 1, *xp.shape[2:]), p.kernel, p.dilation, 0, p.stride)
        return cols.sum(dim=1, dtype=acc).reshape(n, c, *p.out_hw).to(xp.dtype)

    @staticmethod
    def _window_counts(x: torch.Tensor, p: PoolParams) -> torch.Tensor:
        """(OH, OW) number of window elements that count towards each average (geometry's rule)."""
        return torch.as_tensor(pool_counts(p), dtype=x.dtype, device=x.device)

    def _pool_backward(self, forward, x, dy, params: PoolParams):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (dx,) = torch.autograd.grad(forward(xg, params), xg, dy)
        return dx

    def max_pool2d_backward(self, x, dy, params: PoolParams):
        return self._pool_backward(self.max_pool2d, x, dy, params)

    def avg_pool2d_backward(self, x, dy, params: PoolParams):
        return self._pool_backward(self.avg_pool2d, x, dy, params)

    # -- description -----------------------------------------------------------------
    def environment(self) -> dict[str, Any]:
        env: dict[str, Any] = {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "devices": {"cpu": cpu_name()},
            "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available(),
            "tf32": self.tf32,
            "cudnn_benchmark": self.cudnn_benchmark,
            "conv_backward": "aten.convolution_backward",
            "pool_backward": "autograd (forward included)",
        }
        if "cuda" in self.devices:
            env["devices"]["cuda"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
            env["cudnn"] = torch.backends.cudnn.version()
            env["bf16_supported"] = torch.cuda.is_bf16_supported()
        return env


class TorchTF32(Torch):
    """``torch`` with TF32 tensor cores on for float32
    (``implementations.frameworks.torch_adapter:TorchTF32``)."""

    name = "torch-tf32"

    def __init__(self, cudnn_benchmark: bool | None = None):
        super().__init__(tf32=True, cudnn_benchmark=cudnn_benchmark)
