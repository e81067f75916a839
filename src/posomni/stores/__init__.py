"""Stores domain."""
