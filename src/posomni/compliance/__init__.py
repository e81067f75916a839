"""Compliance domain."""
