"""Label vocabularies and their mapping tables."""
