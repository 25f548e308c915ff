"""alloop.oracles."""
