"""What the operator sees: Prometheus metrics, per-route latency and slow queries, request correlation, log and
error-report scrubbing, and the optional Sentry client."""
