"""The scan-process side of the OPC UA server: a supervised server process on the shared frame."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from runtime.front import Feed, FrontEnd
from runtime.opcua._child import child_main
from runtime.opcua._config import OpcuaConfig, default_pki_dir
from runtime.opcua._init import OpcuaInit
from runtime.opcua._programs import ProgramReader, catalogue, plain
from runtime.ops._access import load_access_config

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["OpcuaServer"]


class OpcuaServer(FrontEnd):
    """An OPC UA server for one engine, in its own process.

    The scan thread pays only for the engine's shared FrameWriter (``runtime.front``, the same
    frame the MQTT bridge reads); asyncua, its crypto and its subscriptions run in a spawned
    child with its own GIL, supervised by ``FrontEnd`` (commands applied between cycles,
    texts and statistics down the pipe, restarts with backoff).
    """

    child_kind = "opcua"
    child_target = staticmethod(child_main)

    def __init__(
        self, engine: ScanEngine, config: OpcuaConfig, *, log_format: str = "console"
    ) -> None:
        super().__init__(engine, config, log_format=log_format)
        self.config = config
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.pki_dir = (config.pki_dir or default_pki_dir()) / engine.app.name
        self._programs: ProgramReader | None = None
        self._next_programs = 0.0

    def connection_status(self) -> dict[str, Any]:
        return {
            "who": f"opcua server {self.config.endpoint}",
            "endpoint": self.config.endpoint,
            "connected": self.connected.is_set(),
            "sessions": self._child_stats.get("sessions", 0),
        }

    def child_init(self, feed: Feed) -> OpcuaInit:
        engine = self.engine
        layout = feed.layout()
        programs, blocks, leaves = catalogue(engine)
        self._programs = ProgramReader(engine, [leaf.path for leaf in leaves])
        self._next_programs = 0.0
        return OpcuaInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            pki_dir=self.pki_dir,
            shm_name=feed.shm_name,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=layout.point_infos(),
            kinds=layout.kinds,
            n_alarms=feed.n_alarms,
            alarm_paths=[path for path, _ in layout.alarms],
            params=[param.spec for _, param in layout.params],
            param_values=[param.value for _, param in layout.params],
            phase_paths=[path for path, _ in layout.phases],
            phase_views=[(probe.state, probe.step) for _, probe in layout.phases],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            log_format=self.log_format,
            program_names=programs,
            blocks=blocks,
            leaves=leaves,
        )

    def link_texts(self) -> list[tuple[str, int, Any]]:
        """The Programs' values every ``programs_s``: read between two cycles by the scan
        thread, sent from the link thread once that read is done."""
        reader, now = self._programs, time.monotonic()
        if reader is not None and now >= self._next_programs:
            values = reader.poll()
            if values is not None:
                self._next_programs = now + self.config.programs_s
                return [("programs", 0, [plain(v) for v in values])]
        return []
