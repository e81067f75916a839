"""The app's Redis service (standalone or Sentinel) with a circuit breaker and an in-memory fallback, and the
rate limiter built on it."""
