"""Calling the implementation under test: one call, in this process or in an isolated worker process."""
