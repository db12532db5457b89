"""pytest glue: one test per group of compared cases; the ``bench_run`` plugin
(benchmarks.harness.Run) does the work.

Run through ``python -m benchmarks run``, which passes the plugin to ``pytest.main``.
"""


def test_benchmark(bench_group, bench_run):
    bench_run.run_group(bench_group)
