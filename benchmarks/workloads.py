"""Workloads as data: layers of well-known networks, and the profiles that pick them.

A :class:`Layer` is one convolution or pooling layer without a batch size; a
:class:`Workload` is a layer at a batch size. Geometry goes through
``ConvParams.create`` / ``PoolParams.create`` only. Channel counts, kernels, strides and
paddings follow the papers (AlexNet: Krizhevsky et al. 2012, with its two-group layers;
VGG-16: Simonyan & Zisserman 2014; ResNet-50: He et al. 2015, torchvision v1.5 with the
stride on the 3x3 convolution; DeepBench: Baidu's training conv shapes, which give their
own batch size).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from implementations import benchdnn
from implementations.geometry import ConvParams, PoolParams, conv_flops

OPS = ("conv2d", "max_pool2d", "avg_pool2d")
PASSES = ("forward", "backward")


@dataclass(frozen=True)
class Layer:
    """One layer: input (C, H, W) and either a conv filter bank or a pooling window."""

    network: str
    name: str
    op: str
    chw: tuple[int, int, int]
    kernel: tuple[int, int]
    filters: int = 0  # conv only: output channels K
    stride: Any = 1  # int or (sh, sw)
    padding: Any = 0  # any padding spec of the geometry module
    groups: int = 1
    batch: int | None = None  # a batch size the source itself prescribes (DeepBench, benchdnn)
    dilation: Any = 1  # int or (dh, dw)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op={self.op!r}: must be one of {OPS}")

    @property
    def key(self) -> str:
        return f"{self.network}.{self.name}"


@dataclass(frozen=True)
class Workload:
    """A layer at a batch size: what one benchmark times."""

    layer: Layer
    batch: int

    @property
    def name(self) -> str:
        return f"{self.layer.key}@b{self.batch}"

    @property
    def op(self) -> str:
        return self.layer.op

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, *self.layer.chw)

    @property
    def params(self) -> ConvParams | PoolParams:
        lay = self.layer
        if lay.op == "conv2d":
            w_shape = (lay.filters, lay.chw[0] // lay.groups, *lay.kernel)
            return ConvParams.create(self.x_shape, w_shape, lay.stride, lay.padding, lay.dilation, lay.groups)
        return PoolParams.create(self.x_shape, lay.kernel, lay.stride, lay.padding, lay.dilation)

    def flops(self, pass_: str) -> int:
        """Work of one call: direct-convolution FLOPs for conv (backward = dx + dw, twice
        the forward); window elements visited for pooling (one compare or add each)."""
        p = self.params
        if isinstance(p, ConvParams):
            return conv_flops(p) * (2 if pass_ == "backward" else 1)
        n, c, oh, ow = p.y_shape
        return n * c * oh * ow * p.kernel[0] * p.kernel[1]

    def min_bytes(self, pass_: str, itemsize: int) -> int:
        """Bytes an ideal implementation must move: every input read and output written once."""
        p = self.params
        x, y = _size(p.x_shape), _size(p.y_shape)
        w = _size(p.w_shape) if isinstance(p, ConvParams) else 0
        elems = x + w + y if pass_ == "forward" else 2 * x + 2 * w + y  # backward reads dy, writes dx, dw
        return elems * itemsize


def _size(shape) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def _conv(net: str, name: str, chw: tuple[int, int, int], k: int, kernel: int, **geometry: Any) -> Layer:
    """A conv layer with a square kernel; ``geometry``: stride, padding, groups, batch (Layer's fields)."""
    return Layer(net, name, "conv2d", chw, (kernel, kernel), k, **geometry)


def _pool(net, name, op, chw, kernel, stride, padding=0) -> Layer:
    return Layer(net, name, op, chw, (kernel, kernel), 0, stride, padding)


SIMPLECONVNET = (
    _conv("simpleconvnet", "conv1", (1, 28, 28), 30, 5),
    _pool("simpleconvnet", "pool1", "max_pool2d", (30, 24, 24), 2, 2),
)

LENET5 = (
    _conv("lenet5", "c1", (1, 32, 32), 6, 5),
    _pool("lenet5", "s2", "avg_pool2d", (6, 28, 28), 2, 2),
    _conv("lenet5", "c3", (6, 14, 14), 16, 5),
    _pool("lenet5", "s4", "avg_pool2d", (16, 10, 10), 2, 2),
    _conv("lenet5", "c5", (16, 5, 5), 120, 5),
)

ALEXNET = (
    _conv("alexnet", "conv1", (3, 227, 227), 96, 11, stride=4),
    _pool("alexnet", "pool1", "max_pool2d", (96, 55, 55), 3, 2),
    _conv("alexnet", "conv2", (96, 27, 27), 256, 5, padding=2, groups=2),
    _pool("alexnet", "pool2", "max_pool2d", (256, 27, 27), 3, 2),
    _conv("alexnet", "conv3", (256, 13, 13), 384, 3, padding=1),
    _conv("alexnet", "conv4", (384, 13, 13), 384, 3, padding=1, groups=2),
    _conv("alexnet", "conv5", (384, 13, 13), 256, 3, padding=1, groups=2),
    _pool("alexnet", "pool5", "max_pool2d", (256, 13, 13), 3, 2),
)

VGG16 = (
    _conv("vgg16", "conv1_1", (3, 224, 224), 64, 3, padding=1),
    _conv("vgg16", "conv1_2", (64, 224, 224), 64, 3, padding=1),
    _pool("vgg16", "pool1", "max_pool2d", (64, 224, 224), 2, 2),
    _conv("vgg16", "conv2_1", (64, 112, 112), 128, 3, padding=1),
    _conv("vgg16", "conv2_2", (128, 112, 112), 128, 3, padding=1),
    _pool("vgg16", "pool2", "max_pool2d", (128, 112, 112), 2, 2),
    _conv("vgg16", "conv3_1", (128, 56, 56), 256, 3, padding=1),
    _conv("vgg16", "conv3_2", (256, 56, 56), 256, 3, padding=1),
    _pool("vgg16", "pool3", "max_pool2d", (256, 56, 56), 2, 2),
    _conv("vgg16", "conv4_1", (256, 28, 28), 512, 3, padding=1),
    _conv("vgg16", "conv4_2", (512, 28, 28), 512, 3, padding=1),
    _pool("vgg16", "pool4", "max_pool2d", (512, 28, 28), 2, 2),
    _conv("vgg16", "conv5_1", (512, 14, 14), 512, 3, padding=1),
    _pool("vgg16", "pool5", "max_pool2d", (512, 14, 14), 2, 2),
)


def _resnet50() -> tuple[Layer, ...]:
    """The unique layers of ResNet-50: stem, then per stage the bottleneck's 1x1 reduce,
    3x3 (strided in the first block), 1x1 expand and the strided 1x1 shortcut."""
    net = "resnet50"
    layers = [
        _conv(net, "conv1", (3, 224, 224), 64, 7, stride=2, padding=3),
        _pool(net, "maxpool", "max_pool2d", (64, 112, 112), 3, 2, padding=1),
    ]
    c_in, hw = 64, 56
    for stage, mid in ((2, 64), (3, 128), (4, 256), (5, 512)):
        out = 4 * mid
        stride = 1 if stage == 2 else 2
        o = hw // stride
        layers += [
            _conv(net, f"res{stage}_reduce_first", (c_in, hw, hw), mid, 1),
            _conv(net, f"res{stage}_conv3x3_s{stride}", (mid, hw, hw), mid, 3, stride=stride, padding=1),
            _conv(net, f"res{stage}_expand", (mid, o, o), out, 1),
            _conv(net, f"res{stage}_shortcut", (c_in, hw, hw), out, 1, stride=stride),
            _conv(net, f"res{stage}_reduce", (out, o, o), mid, 1),
        ]
        if stride != 1:
            layers.append(_conv(net, f"res{stage}_conv3x3", (mid, o, o), mid, 3, padding=1))
        c_in, hw = out, o
    layers.append(_pool(net, "avgpool", "avg_pool2d", (2048, 7, 7), 7, 1))
    unique: dict[tuple[object, ...], Layer] = {}
    for layer in layers:  # stage 2 has no strided 3x3: its first 3x3 is the repeated one
        shape = (layer.op, layer.chw, layer.kernel, layer.filters, layer.stride, layer.padding)
        unique.setdefault(shape, layer)
    return tuple(replace(lay, name=lay.name.replace("_s1", "")) for lay in unique.values())


RESNET50 = _resnet50()

#: DeepBench training conv shapes (W, H, C, N, K, S, R, pad_w, pad_h, stride_w, stride_h),
#: square-padded ones only; speech, face recognition and vision entries.
DEEPBENCH = (
    _conv("deepbench", "speech_20x5", (1, 161, 700), 32, 5, stride=2, batch=4),
    _conv("deepbench", "ocr_3x3", (1, 48, 480), 16, 3, padding=1, batch=16),
    _conv("deepbench", "ocr_3x3_c16", (16, 24, 240), 32, 3, padding=1, batch=16),
    _conv("deepbench", "face_3x3", (64, 54, 54), 64, 3, padding=1, batch=8),
    _conv("deepbench", "vision_7x7", (3, 224, 224), 64, 7, stride=2, padding=3, batch=16),
)

NETWORKS = {
    "simpleconvnet": SIMPLECONVNET,
    "lenet5": LENET5,
    "alexnet": ALEXNET,
    "vgg16": VGG16,
    "resnet50": RESNET50,
    "deepbench": DEEPBENCH,
}
LAYERS = {layer.key: layer for layers in NETWORKS.values() for layer in layers}


@dataclass(frozen=True)
class Profile:
    """Which workloads a run times, on what, and how long it may spend.

    ``target_s`` is the steady-state time aimed for per benchmark (rounds are chosen from
    the first call); ``max_call_s`` skips a benchmark whose estimated single call is
    longer; ``budget_s`` caps the estimated total per implementation, device and dtype.
    """

    name: str
    workloads: tuple[Workload, ...]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    target_s: float
    min_rounds: int
    max_rounds: int
    max_call_s: float
    budget_s: float
    gemm_size: int
    #: (framework implementation, spec, dtypes) run besides the available implementations
    #: by default, in those dtypes only, e.g. torch with declared TF32 arithmetic in float32.
    variants: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    #: a timed sample repeats the call until it lasts this long (:mod:`benchmarks.interleave`)
    min_sample_s: float = 0.02


def _at(batch: int, *keys: str) -> tuple[Workload, ...]:
    return tuple(Workload(LAYERS[k], batch) for k in keys)


RESNET50_3X3 = ("resnet50.res2_conv3x3", "resnet50.res3_conv3x3", "resnet50.res4_conv3x3",
                "resnet50.res5_conv3x3")

PROFILES = {
    "smoke": Profile(
        "smoke",
        _at(2, "simpleconvnet.conv1", "simpleconvnet.pool1", "lenet5.c3", "lenet5.s4"),
        ("cpu",), ("float32",), target_s=0.02, min_rounds=3, max_rounds=5,
        max_call_s=2.0, budget_s=10.0, gemm_size=256, min_sample_s=0.002,  # seconds: for tests
    ),
    "cpu": Profile(
        "cpu",
        _at(8, *(lay.key for lay in SIMPLECONVNET + LENET5), *RESNET50_3X3,
            "resnet50.res2_reduce", "resnet50.res3_expand")
        + _at(1, "alexnet.conv1", "alexnet.pool1", "alexnet.conv2", "alexnet.conv4",
              "vgg16.conv1_2", "vgg16.pool1", "vgg16.conv3_2", "vgg16.pool3", "resnet50.conv1",
              "resnet50.maxpool", "resnet50.res3_conv3x3_s2", "resnet50.res4_expand", "resnet50.avgpool",
              "deepbench.face_3x3", "deepbench.speech_20x5", "deepbench.ocr_3x3"),
        ("cpu",), ("float32",), target_s=0.5, min_rounds=5, max_rounds=30,
        max_call_s=3.0, budget_s=60.0, gemm_size=1024,
    ),
    "gpu": Profile(
        "gpu",
        _at(64, *(lay.key for lay in SIMPLECONVNET + LENET5))
        + _at(128, *(lay.key for lay in ALEXNET))
        + _at(64, *(lay.key for lay in VGG16 + RESNET50))
        + _at(256, *(lay.key for lay in VGG16 + RESNET50))
        + tuple(Workload(lay, lay.batch or 8) for lay in DEEPBENCH),
        ("cuda",), ("float16", "bfloat16", "float32"), target_s=0.2, min_rounds=10, max_rounds=100,
        max_call_s=2.0, budget_s=600.0, gemm_size=8192,
        variants=(("torch", "implementations.frameworks.torch_adapter:TorchTF32", ("float32",)),),
    ),
}


#: benchdnn shapes files shipped with the benchmarks (source and licence in each header).
SHAPES_DIR = Path(__file__).with_name("shapes")


def shapes_path(name: str | Path) -> Path:
    """A shapes file: the path itself, or the name of one shipped in :data:`SHAPES_DIR`."""
    path = Path(name)
    if not path.is_file() and (SHAPES_DIR / path.name).is_file() and path.parent == Path("."):
        return SHAPES_DIR / path.name
    return path


def layer_of(d: benchdnn.Descriptor, network: str) -> Layer:
    """The layer of one descriptor at its own batch ``mb``, named by its label; pooling is
    max pooling (benchdnn's default algorithm). ``ValueError`` when convcert cannot express it."""
    p = d.params()
    op = "conv2d" if isinstance(p, ConvParams) else "max_pool2d"
    return Layer(network, d.label, op, p.x_shape[1:], p.kernel, d.oc, p.stride, p.padding, d.groups,
                 d.mb, p.dilation)


def shapes_workloads(path: str | Path) -> tuple[tuple[Workload, ...], dict[str, str]]:
    """Workloads of a benchdnn shapes file, and the descriptors refused (label -> reason)."""
    path = shapes_path(path)
    workloads, refused = [], {}
    for d in benchdnn.read(path):
        try:
            layer = layer_of(d, path.name)
        except ValueError as exc:
            refused[d.label] = str(exc)
            continue
        workloads.append(Workload(layer, d.mb))
    return tuple(dict.fromkeys(workloads)), refused


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r}: must be one of {sorted(PROFILES)}")
    return PROFILES[name]
