"""Staff sign-in: tokens, revocation, permissions, CSRF and rate limits."""
