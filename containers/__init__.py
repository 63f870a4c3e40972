"""Container images, deployment manager and rollout strategies (see README)."""
