"""Sparkplug B for a running app (filled in by the next commits)."""
