"""Backups: pg_dump or SQLite online backups with checksum and metadata, verification in a scratch database,
restore, retention and the worker's daily schedule."""
