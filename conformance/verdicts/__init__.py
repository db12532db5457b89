"""Verdicts: certification, blame, diagnosis, the certificate and the matrix."""
