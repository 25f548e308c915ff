"""alloop.surrogate."""
