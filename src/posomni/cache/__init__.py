"""Redis, or an in-memory fallback when Redis is absent."""
