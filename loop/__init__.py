"""alloop.loop."""
