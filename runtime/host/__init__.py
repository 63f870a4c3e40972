"""Running an app on a host: the ``vplc`` CLI, the live view, trace, heartbeat and output paths."""
