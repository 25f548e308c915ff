"""alloop.store."""
