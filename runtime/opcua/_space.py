"""The address space of one app under Objects/vplc/<app>: points, parameters, tasks, batch,
alarms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asyncua import Node, Server, ua

from hal import IecType
from runtime.opcua._conditions import Conditions
from runtime.opcua._init import OpcuaInit
from runtime.opcua._units import eu_information

__all__ = [
    "ACK",
    "ALARM_VARS",
    "LEAF_TYPES",
    "PHASE_METHODS",
    "TASK_FIELDS",
    "UA_SEVERITY",
    "AppSpace",
    "MethodTarget",
    "build_space",
    "node_id",
    "variant_type",
]

# The manifest's IEC types as OPC UA built-in types (PLCopen's IEC 61131-3 mapping).
_VARIANT: dict[IecType, ua.VariantType] = {
    IecType.BOOL: ua.VariantType.Boolean,
    IecType.INT: ua.VariantType.Int16,
    IecType.DINT: ua.VariantType.Int32,
    IecType.REAL: ua.VariantType.Float,
    IecType.LREAL: ua.VariantType.Double,
    IecType.STRING: ua.VariantType.String,
}
# Method browse name → the ISA-88 command the PHASE block takes.
PHASE_METHODS = {
    "Start": "START",
    "Hold": "HOLD",
    "Restart": "RESTART",
    "Stop": "STOP",
    "Abort": "ABORT",
    "Reset": "RESET",
}
# Task statistics: browse name → (path into engine.statistics()["tasks"][name], type).
TASK_FIELDS: dict[str, tuple[tuple[str, ...], ua.VariantType]] = {
    "PeriodMs": (("period_ms",), ua.VariantType.Double),
    "Cycles": (("cycles",), ua.VariantType.UInt64),
    "Overruns": (("overruns",), ua.VariantType.UInt64),
    "SkippedReleases": (("skipped_releases",), ua.VariantType.UInt64),
    "Faults": (("faults",), ua.VariantType.UInt64),
    "ExecAvgUs": (("exec_us", "avg"), ua.VariantType.Double),
    "ExecMaxUs": (("exec_us", "max"), ua.VariantType.Double),
    "ExecP99Us": (("exec_us", "p99"), ua.VariantType.Double),
    "WakeLatencyP99Us": (("wake_latency_us", "p99"), ua.VariantType.Double),
    "WakeLatencyMaxUs": (("wake_latency_us", "max"), ua.VariantType.Double),
}
_RW = ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.CurrentWrite.mask


def variant_type(iec: IecType) -> ua.VariantType:
    return _VARIANT[iec]


def node_id(idx: int, path: str) -> ua.NodeId:
    """String NodeIds from instance paths (``Points.TT101``): stable across versions."""
    return ua.NodeId(ua.String(path), ua.Int16(idx))


@dataclass(frozen=True)
class MethodTarget:
    """What a method node does: an ISA-88 command to the PHASE block at ``block``, or
    (``command == ACK``) acknowledging the ALARM block at ``block``.

    ``object_id`` is the object the method belongs to; a call naming another object is
    refused (Bad_MethodInvalid), as OPC 10000-4 asks.
    """

    block: str
    command: str
    object_id: ua.NodeId


ACK = "ack_alarm"
# The ALARM block's SEVERITY (0 none, 1 H/L, 2 HH/LL/BAD) on OPC UA's 1..1000 scale.
UA_SEVERITY = {0: 0, 1: 500, 2: 900}
# An alarm's variables: browse name → (index into its frame fields, or None for the text).
ALARM_VARS: dict[str, tuple[int | None, ua.VariantType, str]] = {
    "Active": (0, ua.VariantType.Boolean, "a limit or the input's quality is in alarm"),
    "Acked": (1, ua.VariantType.Boolean, "acknowledged since it last became active"),
    "Severity": (2, ua.VariantType.UInt16, "OPC UA's 1..1000: 0 none, 500 H/L, 900 HH/LL/BAD"),
    "HighHighActive": (3, ua.VariantType.Boolean, "HH limit"),
    "HighActive": (4, ua.VariantType.Boolean, "H limit"),
    "LowActive": (5, ua.VariantType.Boolean, "L limit"),
    "LowLowActive": (6, ua.VariantType.Boolean, "LL limit"),
    "BadQualityActive": (7, ua.VariantType.Boolean, "its input is BAD"),
    "Message": (None, ua.VariantType.String, "the alarm's text"),
}


@dataclass
class AppSpace:
    """The nodes the server keeps current, by index, and what writes and calls mean."""

    idx: int
    state: Node
    points: list[Node] = field(default_factory=list)
    params: list[Node] = field(default_factory=list)
    param_by_node: dict[ua.NodeId, int] = field(default_factory=dict)
    tasks: dict[str, dict[str, Node]] = field(default_factory=dict)
    phases: list[tuple[Node, Node]] = field(default_factory=list)
    methods: dict[ua.NodeId, MethodTarget] = field(default_factory=dict)
    alarms: list[dict[str, Node]] = field(default_factory=list)
    conditions: Conditions = field(default_factory=Conditions)  # the alarms as events
    leaves: list[Node] = field(default_factory=list)  # Programs: init.leaves' order


async def _variable(
    server: Server,
    parent: Node,
    nid: ua.NodeId,
    name: str,
    value: Any,
    vtype: ua.VariantType,
    *,
    description: str = "",
    analog: bool = False,
    writable: bool = False,
) -> Node:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = nid
    item.BrowseName = ua.QualifiedName(name, nid.NamespaceIndex)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = ua.NodeId(ua.Int32(ua.ObjectIds.HasComponent))
    typedef = ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType
    item.TypeDefinition = ua.NodeId(ua.Int32(typedef))
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description or name)
    attrs.DataType = ua.NodeId(ua.Int32(vtype.value))  # built-in types: DataType NodeId = type id
    attrs.Value = ua.Variant(value, vtype)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = False
    attrs.AccessLevel = attrs.UserAccessLevel = _RW if writable else ua.AccessLevel.CurrentRead.mask
    item.NodeAttributes = attrs
    result = (await server.iserver.isession.add_nodes([item]))[0]
    result.StatusCode.check()
    return server.get_node(result.AddedNodeId)


async def _analog_properties(
    node: Node, idx: int, path: str, rng: tuple[float, float] | None, unit: str
) -> None:
    """EURange and EngineeringUnits, as an AnalogItemType carries them (OPC 10000-8)."""
    if rng is not None:
        await node.add_property(
            node_id(idx, f"{path}.EURange"),
            ua.QualifiedName("EURange", 0),
            ua.Range(Low=float(rng[0]), High=float(rng[1])),
            datatype=ua.NodeId(ua.Int32(ua.ObjectIds.Range)),
        )
    if unit:
        await node.add_property(
            node_id(idx, f"{path}.EngineeringUnits"),
            ua.QualifiedName("EngineeringUnits", 0),
            eu_information(unit),
            datatype=ua.NodeId(ua.Int32(ua.ObjectIds.EUInformation)),
        )


async def _folder(parent: Node, idx: int, path: str, name: str) -> Node:
    return await parent.add_folder(node_id(idx, path), ua.QualifiedName(name, idx))


async def build_space(server: Server, init: OpcuaInit, idx: int) -> AppSpace:
    """Objects/vplc/<app> with Points, Parameters, Tasks and Batch; returns the live nodes."""
    vplc = await _folder(server.nodes.objects, idx, "vplc", "vplc")
    app = await vplc.add_object(node_id(idx, init.app_name), ua.QualifiedName(init.app_name, idx))
    await app.add_property(
        node_id(idx, "Version"), ua.QualifiedName("Version", idx), init.app_version
    )
    state = await _variable(
        server, app, node_id(idx, "State"), "State", "STOP", ua.VariantType.String
    )
    space = AppSpace(idx=idx, state=state)
    await _points(server, app, init, space)
    await _parameters(server, app, init, space)
    await _tasks(server, app, init, space)
    await _batch(server, app, init, space)
    await _alarms(server, app, init, space)
    await _programs(server, app, init, space)
    return space


async def _points(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    idx = space.idx
    folder = await _folder(app, idx, "Points", "Points")
    for p in init.points:
        path = f"Points.{p.name}"
        numeric = p.type.is_numeric
        node = await _variable(
            server,
            folder,
            node_id(idx, path),
            p.name,
            _zero(p.type),
            variant_type(p.type),
            description=p.description,
            analog=numeric,
        )
        if numeric:
            await _analog_properties(node, idx, path, p.range, p.unit)
        space.points.append(node)


async def _parameters(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    idx = space.idx
    folder = await _folder(app, idx, "Parameters", "Parameters")
    for k, (spec, value) in enumerate(zip(init.params, init.param_values, strict=True)):
        path = f"Parameters.{spec.name}"
        numeric = spec.type.is_numeric
        node = await _variable(
            server,
            folder,
            node_id(idx, path),
            spec.name,
            value,
            variant_type(spec.type),
            description=spec.description,
            analog=numeric,
            writable=True,
        )
        if numeric:
            rng = None if spec.min is None or spec.max is None else (spec.min, spec.max)
            await _analog_properties(node, idx, path, rng, spec.unit)
        space.params.append(node)
        space.param_by_node[node.nodeid] = k


async def _tasks(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    idx = space.idx
    folder = await _folder(app, idx, "Tasks", "Tasks")
    for task in init.engine_stats.get("tasks", {}):
        obj = await folder.add_object(node_id(idx, f"Tasks.{task}"), ua.QualifiedName(task, idx))
        nodes = {}
        for name, (_keys, vtype) in TASK_FIELDS.items():
            nodes[name] = await _variable(
                server, obj, node_id(idx, f"Tasks.{task}.{name}"), name, _ZERO[vtype], vtype
            )
        space.tasks[task] = nodes


async def _batch(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    idx = space.idx
    folder = await _folder(app, idx, "Batch", "Batch")
    for path, (state, step) in zip(init.phase_paths, init.phase_views, strict=True):
        base = f"Batch.{path}"
        obj = await folder.add_object(node_id(idx, base), ua.QualifiedName(path, idx))
        state_node = await _variable(
            server,
            obj,
            node_id(idx, f"{base}.State"),
            "State",
            str(state),
            ua.VariantType.String,
            description="ISA-88 phase state",
        )
        step_node = await _variable(
            server,
            obj,
            node_id(idx, f"{base}.Step"),
            "Step",
            "" if step is None else str(step),
            ua.VariantType.String,
            description="the program's step inside RUNNING",
        )
        space.phases.append((state_node, step_node))
        for name, command in PHASE_METHODS.items():
            method = await obj.add_method(
                node_id(idx, f"{base}.{name}"), ua.QualifiedName(name, idx), _never, [], []
            )
            space.methods[method.nodeid] = MethodTarget(
                block=path, command=command, object_id=obj.nodeid
            )


async def _alarms(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    """Alarms/<program.path>/{Active, Acked, Severity, ..., Message, Acknowledge()}."""
    idx = space.idx
    folder = await _folder(app, idx, "Alarms", "Alarms")
    for path in init.alarm_paths:
        base = f"Alarms.{path}"
        obj = await folder.add_object(node_id(idx, base), ua.QualifiedName(path, idx))
        nodes: dict[str, Node] = {}
        for name, (k, vtype, text) in ALARM_VARS.items():
            zero: Any = "" if k is None else (0 if vtype is ua.VariantType.UInt16 else k == 1)
            nodes[name] = await _variable(
                server, obj, node_id(idx, f"{base}.{name}"), name, zero, vtype, description=text
            )
        method = await obj.add_method(
            node_id(idx, f"{base}.Acknowledge"), ua.QualifiedName("Acknowledge", idx), _never,
            [], [],
        )  # fmt: skip
        space.methods[method.nodeid] = MethodTarget(block=path, command=ACK, object_id=obj.nodeid)
        space.alarms.append(nodes)
        await space.conditions.add(server, path, obj.nodeid)


LEAF_TYPES = {
    "b": ua.VariantType.Boolean,
    "i": ua.VariantType.Int64,
    "f": ua.VariantType.Double,
    "s": ua.VariantType.String,
}
_LEAF_ZERO: dict[str, Any] = {"b": False, "i": 0, "f": 0.0, "s": ""}
_GROUP_TEXT = {
    "Input": "block input",
    "Output": "block output",
    "State": "block state",
    "Var": "program variable",
    "Global": "global variable",
}


async def _programs(server: Server, app: Node, init: OpcuaInit, space: AppSpace) -> None:
    """Programs/<program>/<block>/.../<variable>: the instance tree, read-only (NodeIds are
    ``Programs.`` + the instance path, e.g. ``Programs.control.temp_pid.I``)."""
    idx = space.idx
    folder = await _folder(app, idx, "Programs", "Programs")
    owners: dict[str, Node] = {}
    for name in [*init.program_names, *({"globals"} if _has_globals(init) else set())]:
        owners[name] = await folder.add_object(
            node_id(idx, f"Programs.{name}"), ua.QualifiedName(name, idx)
        )
    for block in init.blocks:  # walk order: a block's parent comes before it
        parent = owners.get(block.parent, folder)
        obj = await parent.add_object(
            node_id(idx, f"Programs.{block.path}"), ua.QualifiedName(block.name, idx)
        )
        await obj.write_attribute(
            ua.AttributeIds.Description, ua.DataValue(ua.Variant(ua.LocalizedText(block.type_name)))
        )
        owners[block.path] = obj
    for leaf in init.leaves:
        parent = owners.get(leaf.owner, folder)
        vtype = LEAF_TYPES[leaf.kind]
        node = await _variable(
            server, parent, node_id(idx, f"Programs.{leaf.path}"), leaf.name,
            _LEAF_ZERO[leaf.kind], vtype, description=_GROUP_TEXT.get(leaf.group, leaf.group),
        )  # fmt: skip
        space.leaves.append(node)


def _has_globals(init: OpcuaInit) -> bool:
    return any(leaf.group == "Global" for leaf in init.leaves)


async def _never(parent: ua.NodeId, *args: Any) -> ua.StatusCode:
    # Calls of vplc methods are answered by the session (they need its user); reaching this
    # means the session did not route it, so refuse rather than act.
    return ua.StatusCode(ua.UInt32(ua.StatusCodes.BadInternalError))


_ZERO: dict[ua.VariantType, Any] = {
    ua.VariantType.Double: 0.0,
    ua.VariantType.UInt64: 0,
}


def _zero(iec: IecType) -> Any:
    if iec is IecType.BOOL:
        return False
    if iec is IecType.STRING:
        return ""
    return 0 if iec.is_integer else 0.0
