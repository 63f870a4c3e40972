"""One PLC assembled in the order that matters: engine, hooks, trace, retain, handover, MQTT, ...

``vplc run``, the test bench and the HIL tests build a runtime through :class:`Runtime` rather
than wiring an engine each their own way. The order is the contract:

1. the scan engine over the loaded app, on its clock;
2. the caller's cycle hooks (observers that must see a cycle before it is recorded: a bench's
   samplers, a test's recorder), then the CSV trace;
3. retained values (a store already loaded, so a bad file was refused before anything else
   was attached): its checkpoint hook, its close hook and its statistics;
4. blue-green handover (standby: programs paused before the first cycle);
5. the MQTT bridge (it reads the handover agent and serves commands from its first cycle),
   then the OPC UA server, then the audit trail's warm-start record (the bridge owns the
   audit file);
6. the heartbeat file, and the operator's real-time overrides last (they need every task).

``close()`` undoes it in the order the CLI always did: engine (outputs safe, final write,
final retain checkpoint), bridge (last values, ``offline``), OPC UA server, trace, heartbeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from runtime.core._clock import Clock
from runtime.core._engine import ScanEngine
from runtime.core._loader import LoadedApp
from runtime.core._task import CycleHook
from runtime.host._cli_state import audit_trail, audit_warm_start
from runtime.host._heartbeat import Heartbeat
from runtime.host._trace import TraceRecorder
from runtime.ops._audit import AuditLog
from runtime.state._handover import HandoverAgent, HandoverError, attach_handover

__all__ = ["AssemblyError", "Realtime", "Runtime"]


class AssemblyError(Exception):
    """A part could not be attached; ``part`` says which ("handover", "mqtt")."""

    def __init__(self, part: str, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True, kw_only=True)
class Realtime:
    """The operator's per-machine overrides of the manifest's real-time settings."""

    fifo_priority: int | None = None
    cpus: list[int] | None = None
    spin_us: int | None = None


class Runtime:
    """A scan engine and everything attached to it, built in one order (module docstring)."""

    def __init__(
        self,
        app: LoadedApp,
        *,
        clock: Clock | None = None,
        hooks: Iterable[CycleHook] = (),
        trace: TraceRecorder | None = None,
        retain: Any = None,
        standby: bool = False,
        mqtt: Any = None,
        opcua: Any = None,
        log_format: str = "console",
        heartbeat: Path | None = None,
        realtime: Realtime | None = None,
        modbus: Any = None,
    ) -> None:
        """``retain``: a loaded ``RetainStore`` (or the bench's); ``mqtt``: an ``MqttConfig``;
        ``opcua``: an ``OpcuaConfig``; ``modbus``: a checked ``ModbusServerConfig`` (served once
        the audit trail is known).

        Raises AssemblyError when the handover or the MQTT bridge cannot be attached; what
        was started by then (trace, bridge, heartbeat) is closed again.
        """
        self.app = app
        self.engine = engine = ScanEngine(app, clock=clock)
        self.trace = trace
        self.retain = retain
        self.handover: HandoverAgent | None = None
        self.bridge: Any = None
        self.opcua: Any = None
        self.audit: AuditLog | None = None
        self.heartbeat: Heartbeat | None = None
        self.modbus: Any = None
        try:
            for hook in hooks:
                engine.add_cycle_hook(hook)
            if trace is not None:
                engine.add_cycle_hook(trace)
            if retain is not None:
                retain.attach(engine)
            try:
                self.handover = attach_handover(engine, standby=standby)
            except HandoverError as exc:
                raise AssemblyError("handover", str(exc)) from None
            if mqtt is not None:
                self.bridge = _attach_mqtt(engine, mqtt, log_format)
            if opcua is not None:
                self.opcua = _attach_opcua(engine, opcua, log_format)
            self.audit = audit_trail(self.bridge)
            audit_warm_start(self.audit, retain)
            if modbus is not None:
                self.modbus = _attach_modbus(engine, modbus, self.audit, log_format)
            if heartbeat is not None:
                self.heartbeat = Heartbeat(engine, heartbeat)
            if realtime is not None:
                engine.set_realtime(
                    fifo_priority=realtime.fifo_priority,
                    cpus=realtime.cpus,
                    spin_us=realtime.spin_us,
                )
        except BaseException:
            self._close_parts()
            raise

    # ------------------------------------------------------------------------ running
    def start(self, *, thread: bool = False) -> None:
        """STOP → RUN; with ``thread`` the scan runs in its real-time thread from now on."""
        self.engine.start()
        if thread:
            self.engine.start_thread()

    def run_until(self, end_ns: int | None) -> None:
        """Scan on this thread until app time ``end_ns`` (virtual time: as fast as it goes)."""
        self.engine.run_until(end_ns)

    def stop_thread(self, timeout: float = 5.0) -> None:
        """End the scan thread (if any) between two cycles and wait for it."""
        self.engine.request_stop()
        self.engine.submit(lambda e: None)  # wakes a sleeping scan to see the request
        self.engine.join(timeout)

    def close(self) -> None:
        """Outputs safe and written, then every part closed; each runs even if one raised."""
        try:
            self.engine.close()
        finally:
            self._close_parts()

    def _close_parts(self) -> None:
        if self.modbus is not None:
            self.modbus.stop()
        try:
            if self.bridge is not None:
                self.bridge.stop()
        finally:
            try:
                if self.opcua is not None:
                    self.opcua.stop()
            finally:
                self._close_files()

    def _close_files(self) -> None:
        try:
            if self.trace is not None:
                self.trace.close()
        finally:
            if self.heartbeat is not None:
                self.heartbeat.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.engine.running:
            self.stop_thread()
        self.close()


def _attach_modbus(engine: ScanEngine, config: Any, audit: AuditLog | None, log_format: str) -> Any:
    from runtime.modbus import attach_modbus  # only a runtime with Modbus pays for the import

    try:
        return attach_modbus(engine, config, audit=audit, log_format=log_format)
    except (OSError, ValueError) as exc:
        raise AssemblyError("modbus", f"cannot start the Modbus server: {exc}") from None


def _attach_mqtt(engine: ScanEngine, config: Any, log_format: str) -> Any:
    from runtime.mqtt import attach_mqtt  # only a runtime with MQTT pays for the import

    try:
        return attach_mqtt(engine, config, log_format=log_format)
    except (OSError, ValueError) as exc:
        raise AssemblyError("mqtt", f"cannot start the MQTT bridge: {exc}") from None


def _attach_opcua(engine: ScanEngine, config: Any, log_format: str) -> Any:
    from pydantic import ValidationError

    from runtime.opcua import attach_opcua  # only a runtime with OPC UA pays for the import

    try:
        return attach_opcua(engine, config, log_format=log_format)
    except (OSError, ValueError, ValidationError) as exc:
        raise AssemblyError("opcua", f"cannot start the OPC UA server: {exc}") from None
