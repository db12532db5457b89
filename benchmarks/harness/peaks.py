"""The run's reference rates: the GEMM peak of each device and precision, and the copy bandwidth,
measured at the start of the run and again at its end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from implementations import Implementation

from .. import measure
from ..storage import ResultFile
from ..workloads import Profile
from .planning import SETTLE_S

#: Start and end peaks further apart than this (relative to the higher): the machine's speed changed.
SPEED_CHANGE = 0.20


@dataclass
class Peaks:
    """GEMM peaks (``device/precision`` -> record) and copy bandwidths (device -> record), kept
    in the result file as they are measured."""

    profile: Profile
    impls: dict[str, Implementation]
    devices: tuple[str, ...]
    dtypes: tuple[str, ...]
    result_file: ResultFile
    peaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    bandwidths: dict[str, dict[str, Any]] = field(default_factory=dict)

    def measure(self, at: str = "start") -> None:
        """GEMM peak and copy bandwidth of every device and precision, at the start of the run
        (before any implementation, so no framework's thread pool is spinning while a GEMM is
        timed) and again at its end (``at="end"``): a machine whose speed changed by more than
        :data:`SPEED_CHANGE` between the two is said to have changed speed during the run."""
        for device in self.devices:
            for dtype in self.dtypes:
                for precision in {impl.reduced_precision.get(dtype, dtype) for impl in self.impls.values()}:
                    self.peak(device, dtype, precision)
        if at != "end":
            return
        measure.settle(SETTLE_S)  # the last implementation's pools stop spinning
        for key, peak in self.peaks.items():
            if peak.get("gflops") is None:
                continue
            device, precision = key.split("/")
            tf32 = precision == "tf32"
            again = measure.gemm_peak(device, "float32" if tf32 else precision, self.profile.gemm_size,
                                      "tf32" if tf32 else None)
            peak.update(end_gflops=again["gflops"], end_method=again["method"],
                        changed=_changed(peak["gflops"], again["gflops"]))
        for device, bw in self.bandwidths.items():
            if bw.get("gbytes_per_s") is None:
                continue
            again = measure.bandwidth(device, 256 if device == "cuda" else 64)
            bw.update(end_gbytes_per_s=again["gbytes_per_s"],
                      changed=_changed(bw["gbytes_per_s"], again["gbytes_per_s"]))
        self.result_file.update(peaks=self.peaks, bandwidth=self.bandwidths)

    def peak(self, device: str, dtype: str, precision: str) -> dict[str, Any]:
        tf32 = precision == "tf32" and device == "cuda"  # TF32 is a CUDA tensor-core mode only
        key = f"{device}/{'tf32' if tf32 else dtype}"
        if key not in self.peaks:
            try:
                self.peaks[key] = measure.gemm_peak(device, dtype, self.profile.gemm_size,
                                                     "tf32" if tf32 else None)
            except (ImportError, RuntimeError) as exc:  # CUDA without torch (or without a GPU): no GEMM
                self.peaks[key] = {"gflops": None, "method": f"not measured: {exc}"}
            self.result_file.update(peaks=self.peaks)
        if device not in self.bandwidths:
            try:
                self.bandwidths[device] = measure.bandwidth(device, 256 if device == "cuda" else 64)
            except (ImportError, RuntimeError) as exc:
                self.bandwidths[device] = {"gbytes_per_s": None, "method": f"not measured: {exc}"}
            self.result_file.update(bandwidth=self.bandwidths)
        return self.peaks[key]


def _changed(start: float, end: float) -> bool:
    return abs(end - start) > SPEED_CHANGE * max(start, end)
