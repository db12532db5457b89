"""convcert: the one command over the suite's four packages, at the top of their import order.

``implementations`` <- ``conformance`` <- ``benchmarks`` <- ``reports`` <- ``convcert``: each
package imports only those before it. This one holds the ``convcert`` command
(:mod:`convcert.cli`), the pytest plugin's entry point (:mod:`convcert.pytest_plugin`) and the
guard that makes sure the four packages imported are this installation's own, whatever the
working folder holds (:mod:`convcert.packages`).
"""

__version__ = "0.1.0"
