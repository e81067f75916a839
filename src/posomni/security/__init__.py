"""Security building blocks: field encryption, password and PIN hashing, access tokens."""
