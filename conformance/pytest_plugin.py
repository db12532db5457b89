"""convcert's cases in a library's own pytest run: ``pytest --convcert SPEC``.

Registered by the wheel under the ``pytest11`` entry point and inert unless ``--convcert``
is given (it adds its options and nothing else: no import of the suite, no test). With it::

    pytest --convcert ./myconv.py:MyConv [--convcert-quick] [--convcert-dtype float32 ...]
           [--convcert-device cpu ...] [--convcert-out DIR] --junitxml=convcert.xml

collects one test per case, device and dtype, named by the case
(``convcert[myconv]::conv2d-n2c3h7w6-k4r3s3-pad_valid-bias[cpu-float32]``), and one test
``convcert[myconv]::certificate`` that holds the verdict. The certification is
``certify``'s, with the same rules: the implementation is loaded by its spec in a worker
process (never in the pytest process), cases a declared limit covers are skipped with
the limit's reason, cases that need an unclaimed feature are skipped as "not claimed",
a failing case fails with its one-line message and the command that reproduces it, and
the certificate test fails where ``convcert certify`` would exit 1 (a claimed feature
with no passing case, the random sweep's shrunk failures, blame and diagnoses).

Each case test runs its own case when it runs, so ``pytest-xdist`` (``-n auto``) spreads
the cases across its workers, each loading the implementation in a convcert worker of its
own. A case's failure names the features the case uses; which of them the failure is
blamed on needs every result, so the certificate test says it. The certificate test,
collected last, gathers the results the case tests judged (in this process, and those the
other xdist workers left in the session's shared folder), runs any case none of them has
run yet, then the random sweep, the determinism calls, blame by experiment and the
diagnoses: the same verdict and the same JUnit report as a run in one process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conformance.execution.worker import Worker
    from conformance.judging.result import CaseResult
    from conformance.verdicts.certificate import Certificate

#: The key of one test: (case name, device, dtype).
Key = tuple[str, str, str]


class _Several(argparse.Action):
    """As ``implementations.arguments.Several``, without importing the suite into every pytest run."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        current = getattr(namespace, self.dest, None)
        kept = [] if current is None or current is self.default else list(current)
        setattr(namespace, self.dest, kept + list(values))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convcert", "convcert conformance cases (inert unless --convcert is given)")
    group.addoption("--convcert", action=_Several, nargs="+", default=[], metavar="SPEC",
                    help="certify SPEC (a registered name, module:Class or path/to/file.py:Class): one "
                         "test per case")
    group.addoption("--convcert-quick", action="store_true",
                    help="a representative subset of the catalogue, no random sweep")
    group.addoption("--convcert-dtype", action=_Several, nargs="+", default=[], metavar="DTYPE",
                    help="dtypes to certify (default: every claimed one)")
    group.addoption("--convcert-device", action=_Several, nargs="+", default=[], metavar="DEVICE",
                    help="devices to certify (default: cpu, or the implementation's only device)")
    group.addoption("--convcert-sweep", type=int, default=None, metavar="N",
                    help="random problems per family, device and dtype after the catalogue "
                         "(default as `convcert certify`: none with --convcert-quick)")
    group.addoption("--convcert-seed", type=int, default=None, help="seed of the random sweep")
    group.addoption("--convcert-case-timeout", type=float, default=None, metavar="S",
                    help="seconds one case may run in the worker before it fails")
    group.addoption("--convcert-out", default=None, metavar="DIR",
                    help="also write the certificate (JSON and Markdown) to DIR")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("convcert", default=None):
        config.pluginmanager.register(ConvcertSession(config), "convcert-session")


class ConvcertSession:
    """What ``--convcert`` adds to a pytest session: one :class:`Certification` per spec."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.certifications: list[Certification] = []
        # where case results judged in one process are left for the certificate test in another
        # (pytest-xdist's workers get the controller's folder through ``pytest_configure_node``)
        given = getattr(config, "workerinput", {}).get("convcert_shared")
        self.owns_shared = given is None
        self.shared = Path(given or tempfile.mkdtemp(prefix="convcert-pytest-"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist: hand each worker the session's shared folder."""
        node.workerinput["convcert_shared"] = str(self.shared)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.owns_shared:
            shutil.rmtree(self.shared, ignore_errors=True)

    @pytest.hookimpl(tryfirst=True)  # before -k / -m deselect
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        from conformance.execution.worker import CASE_TIMEOUT, LoadError, Worker

        timeout = config.getoption("convcert_case_timeout") or CASE_TIMEOUT
        for spec in config.getoption("convcert"):
            worker = Worker(spec, timeout)
            try:
                name = worker.name  # waits for the worker to load the implementation
            except LoadError as exc:
                worker.shutdown()
                raise pytest.UsageError(f"--convcert {spec}: {exc}") from None
            cert = Certification.from_parent(session, name=f"convcert[{name}]", nodeid=f"convcert[{name}]",
                                             spec=spec, worker=worker, shared=self.shared)
            self.certifications.append(cert)
            items.extend(cert.collect())

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        for cert in self.certifications:
            cert.worker.shutdown()


def _selection(claims: Worker, config: pytest.Config) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The devices and dtypes to certify, as ``convcert certify`` chooses them."""
    from conformance.verdicts.certify import NotClaimed, selection_of

    try:
        return selection_of(claims, config.getoption("convcert_device") or None,
                            config.getoption("convcert_dtype") or None, require_claimed=True)
    except (NotClaimed, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None


class Certification(pytest.Collector):
    """The tests of one spec: a test per (case, device, dtype), then the certificate."""

    def __init__(self, *, spec: str, worker: Worker, shared: Path, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec, self.worker = spec, worker
        self.shared = shared / hashlib.sha256(spec.encode()).hexdigest()[:16]
        self.devices, self.dtypes = _selection(worker, self.config)
        self.certificate: Certificate | None = None
        self.results: dict[Key, CaseResult] = {}
        self.cases: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.prepared = False

    def collect(self) -> list[pytest.Item]:
        from conformance.catalogue.selection import all_cases, quick_cases

        cases = quick_cases() if self.config.getoption("convcert_quick") else all_cases()
        self.cases = {case.name: case for case in cases}
        items: list[pytest.Item] = [
            CaseTest.from_parent(self, name=f"{case.name}[{device}-{dtype}]", key=(case.name, device, dtype))
            for device in self.devices for dtype in self.dtypes for case in cases]
        return [*items, CertificateTest.from_parent(self, name="certificate")]

    def _prepare(self) -> None:
        """Before the first case: the golden data and the devices, as ``certify`` checks them."""
        if self.prepared or self.error is not None:
            return
        from conformance.judging.references import verify_golden

        self.prepared = True
        try:
            verify_golden()
            for device in self.devices:
                problem = self.worker.device_problem(device)
                if problem:
                    raise RuntimeError(f"device={device!r}: {self.worker.name} cannot place a tensor there "
                                       f"({problem})")
        except Exception as exc:
            self.error = exc

    def judge(self, key: Key) -> CaseResult:
        """Run and judge one case in this process's worker; the result is left for the certificate test."""
        from conformance.verdicts.certify import runner
        from implementations.files import write_atomic

        self._prepare()
        self._raise()
        case, device, dtype = key
        r = runner(self.worker, self.spec, max_bytes=self.worker.max_memory)(self.cases[case], device, dtype)
        self.results[key] = r
        self.shared.mkdir(parents=True, exist_ok=True)
        write_atomic(self.shared / f"{hashlib.sha256(repr(key).encode()).hexdigest()[:24]}.json",
                     json.dumps(r.to_dict()))
        return r

    def _judged(self) -> dict[Key, CaseResult]:
        """The case results judged so far, here and (under pytest-xdist) in the other workers."""
        from conformance.judging.result import CaseResult

        judged: dict[Key, CaseResult] = {}
        for path in sorted(self.shared.glob("*.json")) if self.shared.is_dir() else []:
            try:
                r = CaseResult.from_dict(json.loads(path.read_text()), str(path))
            except (OSError, ValueError, KeyError):
                continue  # being written: the certificate runs that case itself
            judged[(r.case, r.device, r.dtype)] = r
        return judged | self.results

    def _raise(self) -> None:
        if self.error is not None:
            raise CertificationError(f"{self.spec}: not certified: {type(self.error).__name__}: {self.error}")

    def run(self) -> Certificate:
        """The certificate, certified on first use from the case results judged so far."""
        if self.certificate is None and self.error is None:
            try:
                self.certificate = self._certify()
            except Exception as exc:  # every later test of the spec reports it
                self.error = exc
        self._raise()
        assert self.certificate is not None
        return self.certificate

    def _certify(self) -> Certificate:
        from conformance.search.sweep import DEFAULT_EXAMPLES, DEFAULT_SEED
        from conformance.verdicts.certify import certify

        opt = self.config.getoption
        quick = bool(opt("convcert_quick"))
        sweep = opt("convcert_sweep")
        seed = opt("convcert_seed")
        cert = certify(self.spec, worker=self.worker, devices=self.devices, dtypes=self.dtypes, quick=quick,
                       case_timeout=self.worker.case_timeout, require_claimed=True,
                       sweep_examples=(0 if quick else DEFAULT_EXAMPLES) if sweep is None else sweep,
                       seed=DEFAULT_SEED if seed is None else seed, judged=self._judged())
        if opt("convcert_out"):
            from conformance.rendering.certificate_files import write_certificate

            write_certificate(cert, Path(opt("convcert_out")))
        return cert


class CertificationError(Exception):
    """The certification could not run (golden data, a device, an interruption)."""


class CaseFailed(Exception):
    """A case failed: the text is what the test report shows."""


class _ConvcertItem(pytest.Item):
    parent: Certification

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (CaseFailed, CertificationError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.parent.name, 0, f"{self.parent.name}::{self.name}"


class CaseTest(_ConvcertItem):
    """One case on one device and dtype: passes, skips (limited, not claimed) or fails."""

    def __init__(self, *, key: Key, **kwargs: Any):
        super().__init__(**kwargs)
        self.key = key

    def runtest(self) -> None:
        from conformance.judging.result import FAIL, PASS, failure_records

        r = self.parent.judge(self.key)
        if r.status == PASS:
            return
        if r.status != FAIL:
            _skip(f"{r.status}: {r.reason}" if r.reason else r.status)
        uses = "+".join(r.filed_under)  # what it is blamed on needs every result: the certificate says
        lines = [f"[{uses}] {rec.get('message') or rec['case']}" for rec in failure_records(r)]
        lines += [f"note: {r.reason}"] if r.reason and not any(r.reason in line for line in lines) else []
        raise CaseFailed("\n".join([*lines, f"reproduce: {r.repro}"]))


def _skip(reason: str) -> None:
    """Skip the running test, reported at the test's own location rather than this line."""
    try:
        raise pytest.skip.Exception(reason, _use_item_location=True)  # pytest >= 7
    except TypeError:
        pytest.skip(reason)


class CertificateTest(_ConvcertItem):
    """The certificate's verdict: fails where ``convcert certify`` exits 1."""

    def runtest(self) -> None:
        from conformance.rendering.certificate_files import summary

        cert = self.parent.run()
        if not cert.passed:
            raise CaseFailed(summary(cert))
