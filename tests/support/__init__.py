"""Builders shared by the test suites."""
