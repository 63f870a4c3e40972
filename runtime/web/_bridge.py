"""The scan-process side of the web HMI: a supervised web server process on the shared frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.blocks import PID
from runtime.front import Feed, FrontEnd
from runtime.ops._access import load_access_config
from runtime.web._child import child_main
from runtime.web._config import WebConfig
from runtime.web._init import LoopInfo, WebInit, WebPoint
from runtime.web._queries import QueryAnswers

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine

__all__ = ["WebServer", "engine_loops"]


def engine_loops(engine: ScanEngine) -> list[LoopInfo]:
    """Each PID instance with the point or parameter its PV and SP are wired to, and a unit."""
    image, params = engine.image, engine.app.parameters
    loops = []
    for path, pid in engine.app.tree.of_type(PID):
        wires = pid.wired()
        pv, sp = wires.get("PV"), wires.get("SP")
        unit = image[pv].spec.unit if pv is not None and pv in image else ""
        if not unit and sp in params:
            unit = getattr(params[sp].spec, "unit", "") or ""
        loops.append(LoopInfo(path=path, pv=pv, sp=sp, unit=unit))
    return loops


class WebServer(FrontEnd):
    """The web HMI for one engine, in its own process.

    The scan thread pays only for the engine's shared FrameWriter (``runtime.front``, the
    frame the MQTT bridge and the OPC UA server read too); uvicorn, Starlette, sessions, JSON
    and the trend ring run in a spawned child with its own GIL, supervised by ``FrontEnd``.
    Beyond commands the child sends ``query`` (block internals, instance tree, histograms),
    answered here between cycles like a command.
    """

    child_kind = "web"
    child_target = staticmethod(child_main)

    def __init__(
        self,
        engine: ScanEngine,
        config: WebConfig,
        *,
        overview: dict[str, list[str]] | None = None,
        log_format: str = "console",
    ) -> None:
        super().__init__(engine, config, log_format=log_format)
        self.config = config
        self.access = load_access_config(config.access_file) if config.access_file else None
        self.audit_file = config.audit_file
        self.overview = overview or {}
        self.queries = 0
        self._answers = QueryAnswers(engine, timeout_s=config.command_timeout_s)

    @property
    def url(self) -> str:
        port = self._child_stats.get("port") or self.config.port
        return self.config.model_copy(update={"port": port}).url

    def connection_status(self) -> dict[str, Any]:
        return {
            "who": f"web HMI {self.url}",
            "endpoint": self.url,
            "connected": self.connected.is_set(),
            "sessions": self._child_stats.get("sessions", 0),
        }

    def child_init(self, feed: Feed) -> WebInit:
        engine = self.engine
        layout = feed.layout()
        gmp = engine.app.manifest.gmp
        return WebInit(
            config=self.config,
            access=self.access,
            audit_file=self.audit_file,
            shm_name=feed.shm_name,
            n_alarms=feed.n_alarms,
            app_name=engine.app.name,
            app_version=engine.app.manifest.version,
            points=[
                WebPoint(
                    p.name,
                    p.type.value,
                    p.spec.direction,
                    p.spec.unit,
                    p.spec.range,
                    p.spec.description,
                )
                for p in layout.points
            ],
            kinds=layout.kinds,
            alarm_paths=[path for path, _ in layout.alarms],
            params=[param.spec for _, param in layout.params],
            param_values=[param.value for _, param in layout.params],
            phase_paths=[path for path, _ in layout.phases],
            phase_views=[(probe.state, probe.step) for _, probe in layout.phases],
            loops=engine_loops(engine),
            tasks=[t.name for t in engine.tasks],
            engine_stats=engine.statistics(),
            wall0_ns=self._wall0(),
            overview=self.overview,
            critical=list(gmp.critical) if gmp is not None else [],
            log_format=self.log_format,
        )

    def answer_query(self, body: dict[str, Any]) -> dict[str, Any]:
        self.queries += 1
        return self._answers.answer(body)
