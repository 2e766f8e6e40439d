"""Fetching: bytes in, verified files out. Never decodes an image."""
