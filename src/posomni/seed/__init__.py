"""Reference data for every install, and the demo store for development."""
