"""NCMD/DCMD metrics as commands on the one command path (runtime.ops): roles, audit, refusals."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from hal import IecType
from runtime.blocks import COMMANDS as PHASE_COMMANDS
from runtime.core.manifest import ParameterSpec
from runtime.front import shortest_float32
from runtime.ops._command_handler import CommandHandler
from runtime.ops._commands import (
    AckAlarmCommand,
    CommandResponse,
    LifecycleCommand,
    PhaseCommand,
    SetParameterCommand,
)
from runtime.ops._refusal import RefusalCode
from runtime.ops._signatures import SIGN_HOW
from runtime.sparkplug._init import CONTROLS, MetricDef
from runtime.sparkplug._payload import DataType, PayloadError, metric_value

__all__ = ["DeviceCommands", "Refusal", "unsigned_apply"]

_log = structlog.get_logger("vplc.sparkplug")
_NO_SIGNATURES = (
    "a Sparkplug B DCMD cannot carry electronic signatures, so this action cannot be done "
    "over Sparkplug: sign it in the web HMI or send it with signatures on the MQTT command "
    "topic; nothing was done"
)
_MAX_COMMAND = 32  # PhaseCommand.command's length; longer text is no command anyway


def unsigned_apply(apply: Callable[[Any], CommandResponse]) -> Callable[[Any], CommandResponse]:
    """``apply`` for the command handler of a transport without e-signatures: a command the
    app's ``gmp.critical`` rules want signed is refused by the scan as for any unsigned
    command (code ``signature_required``), and the reason (audited as given here) says why
    it cannot be signed over Sparkplug, rather than asking for a preview and signatures a
    DCMD cannot carry. The code decides, not the words: a reworded refusal keeps its rule
    and still gets the Sparkplug explanation."""

    def run(cmd: Any) -> CommandResponse:
        resp = apply(cmd)
        if resp.status == "refused" and resp.code == RefusalCode.SIGNATURE_REQUIRED:
            rule = resp.reason.removesuffix(SIGN_HOW)
            return resp.model_copy(update={"reason": f"{rule}; {_NO_SIGNATURES}"})
        return resp

    return run


@dataclass(frozen=True)
class Refusal:
    """A DCMD refused before any command ran (the whole message: nothing of it is done)."""

    reason: str


class DeviceCommands:
    """Turns a decoded DCMD into commands and runs them as the configured user.

    The whole message is checked first (every metric known by alias or name, writable, of
    its birth datatype, with a value): one bad metric refuses the message, so a host never
    gets half of a write. What a value means (a parameter's range, a phase command's name,
    whether the phase is in a state that takes it, the app's e-signature rules) is the
    command path's to judge, with an audit record for each refusal. Then each metric is one
    command, in order, through ``CommandHandler.handle_authenticated``: rates, single use
    (the id is the message's digest, so a replayed DCMD is refused), the payload timestamp
    as the command's ``ts`` (a stale one is refused), the user's role, the audit record with
    the topic as source.
    """

    def __init__(
        self,
        handler: CommandHandler,
        metrics: list[MetricDef],
        params: list[ParameterSpec],
        *,
        user: str | None,
    ) -> None:
        self.handler = handler
        self.user = user
        self.params = params
        self.by_alias = {m.alias: m for m in metrics}
        self.by_name = {m.name: m for m in metrics}

    def refuse_early(self, category: str, reason: str, topic: str) -> None:
        """A message refused before it became a command: counted, logged rate-limited, and
        summarised in the audit trail (CommandGuard), never one disk write per message."""
        self.handler.refused += 1
        self.handler.guard.refused_early(category, f"{topic}: {reason}", None)

    def run(self, payload: Any, *, topic: str, raw: bytes, retain: bool) -> list[Any]:
        """Blocking (the audit file, the pipe to the scan): the answers, or a Refusal."""
        if self.user is None:
            reason = "commands are disabled: no sparkplug.command_user configured"
            self.refuse_early("disabled", reason, topic)
            return [Refusal(reason)]
        try:
            commands = self._commands(payload, topic=topic, raw=raw)
        except PayloadError as exc:
            self.refuse_early("malformed", str(exc), topic)
            _log.warning("sparkplug_command_refused", topic=topic, reason=str(exc))
            return [Refusal(str(exc))]
        answers: list[Any] = []
        for cmd in commands:
            resp: CommandResponse = self.handler.handle_authenticated(
                cmd, retain=retain, topic=topic
            )
            if resp.status != "accepted":
                _log.warning(
                    "sparkplug_command_refused",
                    topic=topic,
                    cmd=cmd.cmd,
                    target=getattr(cmd, "name", None) or getattr(cmd, "block", None),
                    reason=resp.reason,
                )
            answers.append(resp)
        return answers

    def _commands(self, payload: Any, *, topic: str, raw: bytes) -> list[Any]:
        if not payload.HasField("timestamp"):
            raise PayloadError("a command payload needs its timestamp (Sparkplug 3.0)")
        if not payload.metrics:
            raise PayloadError("a command payload without metrics")
        try:
            ts = datetime.fromtimestamp(payload.timestamp / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"timestamp {payload.timestamp} is not a date") from None
        digest = hashlib.sha256(topic.encode() + b"\0" + raw).hexdigest()[:32]
        commands = []
        for i, metric in enumerate(payload.metrics):
            where = f"metrics[{i}]"
            mdef = self._resolve(metric, where)
            value = self._value(metric, mdef, where)
            shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."
            base = {
                "id": f"spb-{digest}-{i}",
                "ts": ts,
                "user": self.user,
                "reason": f"Sparkplug command ({topic}): {mdef.name} = {shown}",
            }
            cmd = self._command(mdef, value, base)
            if cmd is not None:
                commands.append(cmd)
        return commands

    def _command(self, mdef: MetricDef, value: Any, base: dict[str, Any]) -> Any:
        """The command one written metric stands for; None for a momentary metric's resting
        value (false for a Boolean, '' for a phase Command: what the metric reads)."""
        if mdef.kind == "param":
            spec = self.params[mdef.index]
            if spec.type is IecType.REAL and isinstance(value, float):
                value = shortest_float32(value)
            return SetParameterCommand(cmd="set_parameter", name=spec.name, value=value, **base)
        if mdef.kind == "phase":
            text = value.strip()
            if not text:
                return None
            # Anything but the six commands goes to the command path too: the scan refuses it
            # ("unknown phase command") and the refusal is audited like any refused command.
            if text.upper() in PHASE_COMMANDS:
                text = text.upper()
            elif len(text) > _MAX_COMMAND:
                text = text[: _MAX_COMMAND - 3] + "..."
            return PhaseCommand(cmd="phase", block=mdef.path, command=text, **base)
        if value is not True:
            return None
        if mdef.kind == "alarm":
            return AckAlarmCommand(cmd="ack_alarm", block=mdef.path, **base)
        action = CONTROLS[mdef.index].lower()
        return LifecycleCommand(cmd=action, **base)

    def _resolve(self, metric: Any, where: str) -> MetricDef:
        mdef = None
        if metric.HasField("alias"):
            mdef = self.by_alias.get(metric.alias)
            if mdef is None:
                raise PayloadError(f"{where}: unknown alias {metric.alias}")
        if metric.HasField("name"):
            named = self.by_name.get(metric.name)
            if named is None:
                raise PayloadError(f"{where}: unknown metric {metric.name!r}")
            if mdef is not None and named is not mdef:
                raise PayloadError(f"{where}: alias {metric.alias} is not {metric.name!r}")
            mdef = named
        assert mdef is not None  # decode() refuses a metric with neither
        if not mdef.writable:
            raise PayloadError(f"{where}: {mdef.name} is read-only")
        return mdef

    def _value(self, metric: Any, mdef: MetricDef, where: str) -> Any:
        if metric.HasField("datatype") and metric.datatype != mdef.datatype:
            got = DataType(metric.datatype).name
            raise PayloadError(f"{where}: {mdef.name} is {mdef.datatype.name}, not {got}")
        try:
            value = metric_value(metric, mdef.datatype)
        except PayloadError as exc:
            raise PayloadError(f"{where} ({mdef.name}): {exc}") from None
        if value is None:
            raise PayloadError(f"{where}: {mdef.name} cannot be set to null")
        return value
