"""convcert conformance: the case catalogue, golden references, error bounds and certification.

Subpackages, from the bottom up: ``catalogue`` (the problems and their names), ``execution``
(calling the implementation, in this process or an isolated worker), ``judging`` (references,
error bounds, one case judged), ``search`` (random problems: strategies, the sweep,
exploration), ``verdicts`` (certification, blame, diagnosis, the certificate, the matrix),
``rendering`` (Markdown and HTML); ``cli`` is ``python -m conformance``, ``mutants`` the
gallery of wrong implementations that proves the suite has teeth.
"""
