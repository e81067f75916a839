"""`posomni preflight`: the pre-deployment checklist as checks."""
