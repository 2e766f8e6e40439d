"""Normalizing: local files in, Hugging Face datasets out. Never touches the network."""
