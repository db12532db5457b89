"""Conformance data rendered for people: certificates and the matrix as Markdown and HTML."""
