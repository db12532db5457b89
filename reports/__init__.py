"""convcert reports: renderings (Markdown, HTML, CSV, plots) of conformance and benchmark results.

Rendered output goes to ``reports/out/`` (not committed); published samples live in
``reports/samples/``.
"""
