"""Running an app on a host: the one ``Runtime`` assembly, the ``vplc`` CLI, the live view,
trace, heartbeat and output paths."""

from runtime.host._runtime import AssemblyError, Realtime, Runtime

__all__ = ["AssemblyError", "Realtime", "Runtime"]
