"""Backups domain."""
