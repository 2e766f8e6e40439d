"""One transport module per source kind."""
