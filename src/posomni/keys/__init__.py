"""Encryption keys: rotation, backup confirmation and recovery drills."""
