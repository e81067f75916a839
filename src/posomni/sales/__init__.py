"""Sales domain."""
