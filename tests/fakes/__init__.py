"""Fakes of external services that speak real HTTP, for driving the real client libraries in tests."""
