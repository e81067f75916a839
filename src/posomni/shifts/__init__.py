"""Shifts domain."""
