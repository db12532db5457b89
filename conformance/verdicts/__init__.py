"""Verdicts: certification, blame, diagnosis, the certificate, the matrix and repro scripts."""
