"""Operator commands: pydantic models, validation against the app, applying them between cycles."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import structlog
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from hal import coerce
from runtime.blocks import ALARM, COMMANDS, PHASE
from runtime.core._fb import FunctionBlock
from runtime.ops._refusal import RefusalCode
from runtime.ops._signatures import (
    RefusedError,
    SignatureIn,
    SignedBy,
    check_signatures,
    preview,
)

if TYPE_CHECKING:
    from runtime.core._engine import ScanEngine
    from runtime.core._loader import LoadedApp

__all__ = [
    "AckAlarmCommand",
    "Command",
    "CommandResponse",
    "ForceCommand",
    "HandoverCommand",
    "LifecycleCommand",
    "PhaseCommand",
    "RefusedError",
    "SetParameterCommand",
    "UnforceCommand",
    "add_command_listener",
    "apply_command",
    "apply_now",
    "command_action",
    "find_block",
    "notify_command",
]

CommandValue = StrictBool | StrictInt | StrictFloat | StrictStr
CommandId = Annotated[StrictStr, Field(min_length=1, max_length=128)] | StrictInt


class _CommandBase(BaseModel):
    """What every command carries: an id to answer to, when it was sent, who sends it, and why.

    ``id`` and ``ts`` make a command single-use: an id is accepted once per user, and a ``ts``
    outside the policy's window (``runtime.ops._access.CommandPolicy``) is refused as stale.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: CommandId
    ts: AwareDatetime = Field(
        description="when the sender sent it: ISO 8601 with a zone (e.g. 2025-03-01T08:00:00Z) "
        "or Unix seconds"
    )
    user: str = Field(min_length=1, max_length=64)
    token: str | None = Field(default=None, max_length=256, repr=False)
    role: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=1000, description="why (goes to the audit log)")
    preview: bool = Field(
        default=False, description="do nothing; answer the content and hash to sign (e-sign)"
    )
    signatures: list[SignatureIn] = Field(default_factory=list, max_length=3)
    # Set by the command handler after checking the passwords; a sender may not set it.
    signed: list[SignedBy] = Field(default_factory=list, max_length=3)


class LifecycleCommand(_CommandBase):
    """start (STOP/FAULT → RUN), stop (RUN → STOP, outputs safe), reset (FAULT → STOP)."""

    cmd: Literal["start", "stop", "reset"]


class SetParameterCommand(_CommandBase):
    """Write a declared parameter or setpoint; the manifest's type and range apply."""

    cmd: Literal["set_parameter"]
    name: str = Field(max_length=128)
    value: CommandValue


class ForceCommand(_CommandBase):
    """Force a point to a value (debugging); visible in telemetry and status."""

    cmd: Literal["force"]
    point: str = Field(max_length=128)
    value: CommandValue


class UnforceCommand(_CommandBase):
    cmd: Literal["unforce"]
    point: str = Field(max_length=128)


class AckAlarmCommand(_CommandBase):
    """Acknowledge an ALARM block, named by instance path ``program.path``."""

    cmd: Literal["ack_alarm"]
    block: str = Field(max_length=256)


class PhaseCommand(_CommandBase):
    """An ISA-88 command (START, HOLD, RESTART, STOP, ABORT, RESET) to a PHASE block."""

    cmd: Literal["phase"]
    block: str = Field(max_length=256)
    command: str = Field(max_length=32)


class HandoverCommand(_CommandBase):
    """Blue-green handover steps (``runtime.state._handover``): release, claim, resume, status."""

    cmd: Literal["handover_release", "handover_claim", "handover_resume", "handover_status"]
    release: dict[str, Any] | None = Field(default=None, description="claim: release answer")
    epoch: StrictInt | None = Field(default=None, ge=0, description="claim/resume: epoch")
    prefer: Literal["new", "running"] | None = Field(
        default=None, description="claim: state merge conflicts (another version's snapshot)"
    )
    strict: bool = Field(default=False, description="claim: refuse unresolved conflicts")


Command = Annotated[
    HandoverCommand
    | LifecycleCommand
    | SetParameterCommand
    | ForceCommand
    | UnforceCommand
    | AckAlarmCommand
    | PhaseCommand,
    Field(discriminator="cmd"),
]


class CommandResponse(BaseModel):
    """The answer to one command; ``old``/``new`` show what changed (None when nothing).

    ``reason`` says why in words, for people (it may be reworded); ``code`` is the refusal's
    kind for programs to decide on (``RefusalCode``; None when accepted, or for a refusal of
    no kind a front-end tells apart).
    """

    model_config = ConfigDict(extra="forbid")

    id: str | int | None
    cmd: str | None = None
    status: Literal["accepted", "refused", "preview"]
    reason: str = ""
    code: RefusalCode | None = None
    old: Any = None
    new: Any = None
    user: str | None = None
    signatures: list[dict[str, Any]] | None = None
    ts: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))


# An action runs on the scan thread and returns (old, new) or raises RefusedError.
_Action = Callable[["ScanEngine"], tuple[Any, Any]]
B = TypeVar("B", bound=FunctionBlock)


def find_block(engine: ScanEngine, path: str) -> FunctionBlock:
    """The block at ``program.instance.path`` (the app's InstanceTree path)."""
    return _find_block(engine.app, path)


def _typed_block(app: LoadedApp, path: str, cls: type[B]) -> B:
    """The ``cls`` instance at ``path``; refused naming the instances of ``cls`` there are."""
    try:
        block = _find_block(app, path)
    except RefusedError as exc:
        why = f": {exc}"
    else:
        if isinstance(block, cls):
            return block
        why = f" but a {type(block).__name__}"
    name = cls.__name__
    paths = [p for p, _ in app.tree.of_type(cls)]
    more = f", … {len(paths) - 10} more" if len(paths) > 10 else ""
    known = ", ".join(paths[:10]) + more if paths else "none"
    article = "an" if name[0] in "AEIOU" else "a"
    raise RefusedError(f"{path!r} is not {article} {name} instance{why} ({name} blocks: {known})")


def _find_block(app: LoadedApp, path: str) -> FunctionBlock:
    tree = app.tree
    prog_name, _, inner = path.partition(".")
    if prog_name not in tree.programs:
        raise RefusedError(f"no program {prog_name!r} (programs: {', '.join(tree.programs)})")
    block = tree.find(path) if inner else None
    if not isinstance(block, FunctionBlock):
        raise RefusedError(f"program {prog_name!r} has no block {inner!r}")
    return block


def _lifecycle(cmd: LifecycleCommand) -> _Action:
    def action(engine: ScanEngine) -> tuple[Any, Any]:
        old = engine.state.value
        if cmd.cmd == "start":
            engine.start()
        elif cmd.cmd == "stop":
            engine.stop()
        else:
            if old != "FAULT":
                raise RefusedError(f"reset acknowledges a FAULT; the runtime is in {old}")
            engine.reset()
        return old, engine.state.value

    return action


def _set_parameter(app: LoadedApp, cmd: SetParameterCommand) -> _Action:
    param = app.parameters.get(cmd.name)
    if param is None:
        known = ", ".join(app.parameters) or "none"
        raise RefusedError(f"unknown parameter {cmd.name!r} (parameters: {known})")
    try:
        checked = param.spec.check(cmd.value)
    except (TypeError, ValueError) as exc:
        raise RefusedError(str(exc), RefusalCode.OUT_OF_LIMITS) from None
    return lambda _engine: (param.set(checked), checked)


def _force(app: LoadedApp, cmd: ForceCommand | UnforceCommand) -> _Action:
    if cmd.point not in app.image:
        raise RefusedError(f"unknown point {cmd.point!r}")
    point = app.image[cmd.point]
    if isinstance(cmd, UnforceCommand):

        def unforce(_engine: ScanEngine) -> tuple[Any, Any]:
            if not point.forced:
                raise RefusedError(f"point {point.name!r} is not forced")
            old = point.forced_value
            point.unforce()
            return old, None

        return unforce
    try:
        value = coerce(point.type, cmd.value)
    except (TypeError, ValueError) as exc:
        raise RefusedError(f"point {point.name!r}: {exc}", RefusalCode.OUT_OF_LIMITS) from None
    rng = point.spec.range
    if rng is not None and isinstance(value, int | float) and not rng[0] <= value <= rng[1]:
        raise RefusedError(
            f"point {point.name!r}: {value} is outside its range {list(rng)}",
            RefusalCode.OUT_OF_LIMITS,
        )

    def force(_engine: ScanEngine) -> tuple[Any, Any]:
        old = point.forced_value if point.forced else point.value
        point.force(value)
        return old, value

    return force


def _ack(app: LoadedApp, cmd: AckAlarmCommand) -> _Action:
    block = _typed_block(app, cmd.block, ALARM)

    def ack(_engine: ScanEngine) -> tuple[Any, Any]:
        old = block.UNACKED
        block.acknowledge()
        return {"unacked": old}, {"unacked": block.UNACKED}

    return ack


def _phase(app: LoadedApp, cmd: PhaseCommand) -> _Action:
    block = _typed_block(app, cmd.block, PHASE)
    if cmd.command.strip().upper() not in COMMANDS:
        raise RefusedError(
            f"unknown phase command {cmd.command!r} (commands: {', '.join(COMMANDS)})"
        )

    def phase(_engine: ScanEngine) -> tuple[Any, Any]:
        result = block.command(cmd.command)
        if not result.accepted:
            raise RefusedError(f"phase {cmd.block!r}: {cmd.command!r} {result.reason}")
        return result.state_before, result.state_after

    return phase


def _handover(engine: ScanEngine, cmd: HandoverCommand) -> _Action:
    from runtime.state._handover import HandoverError, agent_for

    agent = agent_for(engine)
    if agent is None:
        raise RefusedError("no handover here: the app has no driver with output ownership")
    if cmd.cmd == "handover_claim" and (cmd.release is None or cmd.epoch is None):
        raise RefusedError("handover_claim needs release (the old instance's answer) and epoch")

    def step(_engine: ScanEngine) -> tuple[Any, Any]:
        before = agent.mode
        try:
            if cmd.cmd == "handover_release":
                return before, agent.release()
            if cmd.cmd == "handover_claim":
                assert cmd.release is not None and cmd.epoch is not None
                return before, agent.claim(
                    cmd.release, cmd.epoch, prefer=cmd.prefer, strict=cmd.strict
                )
            if cmd.cmd == "handover_resume":
                return before, agent.resume(cmd.epoch)
            return before, agent.status()
        except HandoverError as exc:
            raise RefusedError(str(exc)) from None

    return step


def _action_for(engine: ScanEngine, cmd: Any) -> _Action:
    if isinstance(cmd, HandoverCommand):
        return _handover(engine, cmd)
    return command_action(engine.app, cmd)


def command_action(app: LoadedApp, cmd: Any) -> _Action:
    """Validate ``cmd`` (any command but a handover step) against ``app``; what applies it.

    Raises RefusedError with the reason. The action, ``action(engine) -> (old, new)``, must run
    on the scan thread between two cycles and may itself refuse (RefusedError): this is what
    ``apply_command`` submits, and what a bench timeline runs between its ``run_until`` slices.
    """
    if isinstance(cmd, LifecycleCommand):
        return _lifecycle(cmd)
    if isinstance(cmd, SetParameterCommand):
        return _set_parameter(app, cmd)
    if isinstance(cmd, ForceCommand | UnforceCommand):
        return _force(app, cmd)
    if isinstance(cmd, AckAlarmCommand):
        return _ack(app, cmd)
    if isinstance(cmd, PhaseCommand):
        return _phase(app, cmd)
    raise RefusedError(f"unsupported command {type(cmd).__name__}")


# Observers of applied commands (the batch recorder): called on the scan thread, between two
# cycles, with (command, old, new, signatures); they must be quick and must not raise.
CommandListener = Callable[[Any, Any, Any, list[dict[str, Any]]], None]
_LISTENERS: weakref.WeakKeyDictionary[Any, list[CommandListener]] = weakref.WeakKeyDictionary()


def add_command_listener(engine: ScanEngine, listener: CommandListener) -> None:
    """Call ``listener`` after each accepted command applied to ``engine``."""
    _LISTENERS.setdefault(engine, []).append(listener)


def notify_command(
    engine: ScanEngine, cmd: Any, old: Any, new: Any, signatures: list[dict[str, Any]]
) -> None:
    """Tell the listeners of ``engine`` that ``cmd`` was applied (scan thread); never raises.

    The command path calls it; so does a bench timeline, whose commands skip the path's
    authentication and signatures but are operator actions all the same (batch record).
    """
    for listener in _LISTENERS.get(engine, ()):
        try:
            listener(cmd, old, new, signatures)
        except Exception:  # an observer must never turn an applied command into a refusal
            structlog.get_logger("vplc.commands").exception("command_listener_failed")


def _signed_action(cmd: Any, action: _Action) -> Callable[[ScanEngine], tuple[Any, Any, Any]]:
    """The action behind the e-signature check (scan thread), then the listeners."""

    def run(eng: ScanEngine) -> tuple[Any, Any, Any]:
        if getattr(cmd, "preview", False):
            return "preview", None, preview(eng, cmd)
        signatures = check_signatures(eng, cmd)
        old, new = action(eng)
        notify_command(eng, cmd, old, new, signatures)
        return signatures, old, new

    return run


def apply_now(engine: ScanEngine, cmd: Any) -> CommandResponse:
    """``apply_command`` for a caller already between two cycles (a virtual-time run)."""
    try:
        run = _signed_action(cmd, _action_for(engine, cmd))
        first, old, new = run(engine)
    except RefusedError as exc:
        return _answer(cmd, "refused", str(exc), code=exc.code)
    if first == "preview":
        return _answer(cmd, "preview", "", None, new)
    return _answer(cmd, "accepted", "", old, new, first or None)


def _answer(
    cmd: Any,
    status: Literal["accepted", "refused", "preview"],
    reason: str = "",
    old: Any = None,
    new: Any = None,
    signatures: list[dict[str, Any]] | None = None,
    *,
    code: RefusalCode | None = None,
) -> CommandResponse:
    return CommandResponse(
        id=cmd.id,
        cmd=cmd.cmd,
        status=status,
        reason=reason,
        code=code,
        old=old,
        new=new,
        user=cmd.user,
        signatures=signatures,
    )


def apply_command(
    engine: ScanEngine,
    cmd: Any,
    *,
    timeout_s: float = 2.0,
    on_applied: Callable[[ScanEngine], None] | None = None,
) -> CommandResponse:
    """Validate ``cmd`` against the app, run it between two cycles, and say what changed.

    Never raises for a bad command: every problem becomes a refused response. If the scan
    does not pick the command up within ``timeout_s`` it is withdrawn (and never runs
    later), because an operator told "refused" must be able to trust that nothing happened.
    ``on_applied(engine)`` runs on the scan thread right after the command took effect (not
    for a preview), still between the same two cycles: what it reads (``change_seq``, the
    new values) is exactly the command's outcome, before any later cycle or command.
    """

    answer = functools.partial(_answer, cmd)
    try:
        action = _signed_action(cmd, _action_for(engine, cmd))
    except RefusedError as exc:
        return answer("refused", str(exc), code=exc.code)
    gate = threading.Lock()
    phase = {"started": False, "withdrawn": False}
    signed: list[Any] = []

    def guarded(eng: ScanEngine) -> tuple[bool, Any, Any]:
        with gate:
            if phase["withdrawn"]:
                return False, "withdrawn", None
            phase["started"] = True
        try:
            first, old, new = action(eng)
        except RefusedError as exc:
            return False, str(exc), exc.code
        signed.append(first)
        if on_applied is not None and first != "preview":
            try:
                on_applied(eng)
            except Exception:  # the command took effect: its answer must say so
                structlog.get_logger("vplc.commands").exception("on_applied_failed")
        return True, old, new

    future = engine.submit(guarded)
    try:
        ok, old, new = future.result(timeout=timeout_s)
    except FutureTimeout:
        with gate:
            phase["withdrawn"] = not phase["started"]
        if phase["withdrawn"]:
            return answer("refused", f"the scan did not take the command within {timeout_s} s")
        try:
            ok, old, new = future.result(timeout=timeout_s)
        except Exception as exc:
            return answer("refused", f"internal error: {type(exc).__name__}: {exc}")
    except Exception as exc:  # an action bug must not become an unanswered command
        return answer("refused", f"internal error: {type(exc).__name__}: {exc}")
    if not ok:  # (False, reason, code)
        return answer("refused", str(old), code=new)
    if signed and signed[0] == "preview":
        return answer("preview", "", None, new)
    return answer("accepted", "", old, new, (signed[0] if signed else None) or None)
