"""A benchmark result as a typed record, shared by the harness, result files and reports.

Modelled on ``torch.utils.benchmark.Measurement``: a :class:`BenchmarkResult` holds the
task it measured (:class:`TaskSpec`), the raw times of each timer (:class:`Timing`) and
the facts around them; statistics (median, IQR, GFLOP/s, % of the GEMM peak) are derived
properties, never stored numbers read back through ``.get`` chains.

JSON round trip: :meth:`BenchmarkResult.to_json` / :meth:`BenchmarkResult.from_json`
(schema :data:`SCHEMA`). Rows of schema-1 files (no layout, no raw times, one host timer)
are read by :func:`result_from_v1`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any

from .stats import Measurement, arithmetic_intensity, gflops, measurement_of

SCHEMA = 2
#: Schemas :func:`benchmarks.storage.read` accepts.
READABLE_SCHEMAS = (1, 2)
STATUSES = ("ok", "wrong", "error")


@dataclass(frozen=True)
class TaskSpec:
    """What one benchmark measures: implementation x device x dtype x layout x workload x pass."""

    impl: str
    device: str
    dtype: str
    layout: str
    workload: str
    network: str
    layer: str
    op: str
    pass_: str
    batch: int
    x_shape: tuple[int, ...]
    w_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for name in _TEXT_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name}={getattr(self, name)!r}: must be a string")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 0:
            raise ValueError(f"batch={self.batch!r}: must be an integer >= 0")
        for name in ("x_shape", "w_shape"):
            shape = getattr(self, name)
            if shape is not None and not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
                raise ValueError(f"{name}={shape!r}: must be a list of integers")

    def key(self, machine: str) -> tuple[str, ...]:
        """Identity across runs: machine, device, implementation, dtype, layout, workload, pass."""
        return (machine, self.device, self.impl, self.dtype, self.layout, self.workload, self.pass_)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["pass"] = out.pop("pass_")
        out["x_shape"] = list(self.x_shape)
        out["w_shape"] = list(self.w_shape) if self.w_shape else None
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskSpec:
        kwargs = {k: data[k] for k in _TASK_FIELDS if k in data}
        kwargs["x_shape"] = tuple(data["x_shape"])
        kwargs["w_shape"] = tuple(data["w_shape"]) if data.get("w_shape") else None
        return cls(pass_=data["pass"], **kwargs)


_TASK_FIELDS = tuple(f.name for f in fields(TaskSpec) if f.name != "pass_")
_TEXT_FIELDS = ("impl", "device", "dtype", "layout", "workload", "network", "layer", "op", "pass_")
#: No timed call lasts longer than this (a day): a larger time is a corrupt or forged file.
MAX_TIME_S = 86400.0


@dataclass(frozen=True)
class Timing:
    """Times per call (seconds) from one timer, and how that timer measured them.

    ``method`` says what a time is (e.g. "CUDA events around each call, queued back to
    back"). ``times_s`` are the raw per-round times; files of schema 1 kept only the
    summary, so ``times_s`` may be empty and ``summary`` is then given.
    """

    method: str
    times_s: tuple[float, ...] = ()
    given_summary: Measurement | None = None

    def __post_init__(self) -> None:
        if not self.times_s and self.given_summary is None:
            raise ValueError(f"Timing({self.method!r}): needs times_s or a summary")
        bad = [t for t in self.times_s if not _plausible(t)]
        if bad:
            raise ValueError(f"times_s holds {bad[0]!r}: every time must be a number of seconds > 0 "
                             f"and <= {MAX_TIME_S:g}")
        if self.given_summary is not None and not _plausible(self.given_summary.median_s):
            raise ValueError(f"median_s={self.given_summary.median_s!r}: must be > 0 and <= {MAX_TIME_S:g}")

    @cached_property
    def summary(self) -> Measurement:
        if self.times_s:
            return measurement_of(self.times_s)
        assert self.given_summary is not None  # __post_init__ refuses neither
        return self.given_summary

    @property
    def median_s(self) -> float:
        return self.summary.median_s

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "times_s": list(self.times_s), "summary": self.summary.as_dict()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timing:
        times = tuple(float(t) for t in data.get("times_s") or ())
        summary = None if times else _measurement(data["summary"])
        return cls(data["method"], times, summary)


def _plausible(t: Any) -> bool:
    """A number of seconds > 0 and at most :data:`MAX_TIME_S` (NaN and infinities are not)."""
    return isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= MAX_TIME_S


def _measurement(data: dict[str, Any]) -> Measurement:
    """A stored summary; the median's interval is NaN (unknown) where the file has none."""
    ci = {f.name: float(data.get(f.name, math.nan)) for f in fields(Measurement) if f.name.startswith("ci_")}
    return Measurement(data["median_s"], data["iqr_s"], data["min_s"], data["mean_s"], data["rounds"], **ci)


@dataclass(frozen=True)
class BenchmarkResult:
    """One timed (or failed) benchmark. ``device_time`` is the primary figure on a GPU
    (device time per call); ``host_time`` is the host's latency per call, synchronised."""

    task: TaskSpec
    status: str
    finished: str
    host_time: Timing | None = None
    device_time: Timing | None = None
    first_call_s: float | None = None
    precision: str = ""
    flops: int = 0
    flops_kind: str = ""
    min_bytes: int = 0
    peak_gflops: float | None = None
    peak_method: str = ""
    peak_memory_bytes: int | None = None
    memory_method: str = ""
    check: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # per-result flags, e.g. cudnn.benchmark

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status={self.status!r}: must be one of {STATUSES}")
        if self.status != "error" and self.timing is None:
            raise ValueError(f"status={self.status!r}: a timed result needs host_time or device_time")
        for name in ("flops", "min_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}={value!r}: must be a number >= 0")
        peak = self.peak_gflops
        if peak is not None and (isinstance(peak, bool) or not isinstance(peak, (int, float))
                                 or not peak > 0):
            raise ValueError(f"peak_gflops={self.peak_gflops!r}: must be a number > 0 or null")
        if not isinstance(self.check, dict) or not isinstance(self.settings, dict):
            raise ValueError("check and settings must be JSON objects")

    # -- derived --------------------------------------------------------------------------
    @property
    def timing(self) -> Timing | None:
        """The primary figure: device time where measured, else host latency."""
        return self.device_time or self.host_time

    @property
    def median_s(self) -> float:
        return self.timing.median_s if self.timing else float("nan")

    @property
    def gflops(self) -> float:
        return gflops(self.flops, self.median_s) if self.timing else float("nan")

    @property
    def intensity(self) -> float:
        return arithmetic_intensity(self.flops, self.min_bytes)

    @property
    def pct_peak(self) -> float | None:
        """% of the same-run GEMM peak of this precision (convolutions only: pooling does
        no multiply-adds)."""
        if self.task.op != "conv2d" or not self.peak_gflops or self.timing is None:
            return None
        return 100 * self.gflops / self.peak_gflops

    def above(self, peak_gflops: float | None) -> bool:
        """Faster than ``peak_gflops`` beyond the noise: even the slow end of the median's
        confidence interval beats it (a fact about this run's best GEMM, not a claim about the
        algorithm: it may do fewer FLOPs, or the GEMM probe was disturbed)."""
        if self.task.op != "conv2d" or not peak_gflops or self.timing is None:
            return False
        slow = self.timing.summary.ci_high_s
        slow = slow if math.isfinite(slow) else self.median_s
        return gflops(self.flops, slow) > peak_gflops

    @property
    def above_peak(self) -> bool:
        """:meth:`above` the peak recorded with this result."""
        return self.above(self.peak_gflops)

    # -- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.task.to_json()}
        for f in fields(self):
            if f.name == "task":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_json() if isinstance(value, Timing) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BenchmarkResult:
        kwargs = {name: data[name] for name in _RESULT_FIELDS if name in data}
        kwargs["task"] = TaskSpec.from_json(data["task"])
        for name in ("host_time", "device_time"):
            if kwargs.get(name) is not None:
                kwargs[name] = Timing.from_json(kwargs[name])
        return cls(**kwargs)


_RESULT_FIELDS = tuple(f.name for f in fields(BenchmarkResult))


@dataclass(frozen=True)
class SkippedCase:
    """A benchmark the run did not time, and why."""

    task: TaskSpec
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task.to_json(), "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SkippedCase:
        return cls(TaskSpec.from_json(data["task"]), data["reason"])


# -- schema 1 ---------------------------------------------------------------------------------
def _v1_layout(impl: str, device: str) -> str:
    """Schema-1 runs timed each adapter in its own layout: TensorFlow NHWC on the CPU."""
    return "NHWC" if impl == "tensorflow" and device == "cpu" else "NCHW"


def _v1_task(row: dict[str, Any]) -> TaskSpec:
    return TaskSpec(
        impl=row["impl"], device=row["device"], dtype=row["dtype"],
        layout=_v1_layout(row["impl"], row["device"]),
        workload=row["workload"], network=row.get("network", ""), layer=row.get("layer", ""),
        op=row.get("op", ""), pass_=row["pass"], batch=int(row.get("batch") or 0),
        x_shape=tuple(row.get("x_shape") or ()),
        w_shape=tuple(row["w_shape"]) if row.get("w_shape") else None,
    )


V1_TIMER = "host clock (time.perf_counter via pytest-benchmark) around each call + synchronize (schema 1)"


def result_from_v1(row: dict[str, Any]) -> BenchmarkResult:
    """A schema-1 result row (flat dict, summary statistics only, host timer)."""
    m = row.get("measurement")
    host = Timing(V1_TIMER, (), _measurement(m)) if m else None
    status = row.get("status", "error")
    return BenchmarkResult(
        task=_v1_task(row), status=status if host or status == "error" else "error",
        finished=row.get("finished", ""), host_time=host, first_call_s=row.get("first_call_s"),
        precision=row.get("precision", ""), flops=int(row.get("flops") or 0),
        flops_kind=row.get("flops_kind", ""),
        min_bytes=int(row.get("min_bytes") or 0), peak_gflops=row.get("peak_gflops"),
        peak_memory_bytes=row.get("peak_memory_bytes"), memory_method=row.get("memory_method", ""),
        check=row.get("check") or {}, error=row.get("error"),
    )


def skip_from_v1(row: dict[str, Any]) -> SkippedCase:
    return SkippedCase(_v1_task(row), row.get("reason", ""))
