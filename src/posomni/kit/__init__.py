"""Small shared building blocks: money, time, ids and the error base."""
