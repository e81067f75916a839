"""Fixtures for preflight and key-recovery tests: the same install as the backup tests."""

from tests.integration.backups.conftest import install, restored_logging

__all__ = ["install", "restored_logging"]
