"""Processes, Docker, the add-on, Home Assistant and the other side environments."""
