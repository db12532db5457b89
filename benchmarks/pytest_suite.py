"""pytest glue: one test per case; the ``bench_run`` plugin (benchmarks.harness.Run) does the work.

Run through ``python -m benchmarks run``, which passes the plugin to ``pytest.main``.
"""


def test_benchmark(bench_case, bench_run, benchmark):
    bench_run.run_case(bench_case, benchmark)
