"""A real asyncua client against `vplc run bioreactor --opcua` under SignAndEncrypt."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.ua.uaerrors import UaStatusCodeError
from cryptography.x509.oid import ExtendedKeyUsageOID

from runtime.opcua import unit_id
from runtime.opcua._gateway import shortest_float32
from tests.opcua.conftest import Run, node, ns, ua_client

Cert = tuple[Path, Path]


def _code(exc: UaStatusCodeError) -> int:
    return int(exc.code)


async def _wait_value(n: Any, want: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await n.read_value()
        if value in want:
            return value
        await asyncio.sleep(0.1)
    return value


def _records(run: Run, *, user: str, cmd: str, target: str) -> list[dict[str, Any]]:
    return [
        r
        for r in run.audit()
        if r.get("event") == "command"
        and r.get("user") == user
        and r.get("cmd") == cmd
        and r.get("target") == target
    ]


def test_endpoints_are_signed_and_encrypted_with_user_login(served: Run, client_cert: Cert) -> None:
    async def go() -> None:
        async with ua_client(served, client_cert) as client:
            endpoints = await client.get_endpoints()
        modes = {e.SecurityMode for e in endpoints}
        policies = {e.SecurityPolicyUri.rsplit("#", 1)[-1] for e in endpoints}
        tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
        assert modes == {ua.MessageSecurityMode.SignAndEncrypt}
        assert policies == {"Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"}
        assert tokens == {ua.UserTokenType.UserName}  # no anonymous by default

    asyncio.run(go())


@pytest.mark.parametrize("policy", ["Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"])
def test_the_aes_policies_connect(served: Run, client_cert: Cert, policy: str) -> None:
    async def go() -> None:
        async with ua_client(served, client_cert, "vera", policy=policy) as client:
            idx = await ns(client)
            assert await node(client, idx, "State").read_value() == "RUN"

    asyncio.run(go())


def test_wrong_password_and_anonymous_are_refused(served: Run, client_cert: Cert) -> None:
    async def go() -> None:
        with pytest.raises(UaStatusCodeError) as bad:
            async with ua_client(served, client_cert, "olga", password="guess"):
                pass
        assert _code(bad.value) == ua.StatusCodes.BadUserAccessDenied
        with pytest.raises(UaStatusCodeError) as anon:
            async with ua_client(served, client_cert, None):
                pass
        assert _code(anon.value) == ua.StatusCodes.BadIdentityTokenRejected

    asyncio.run(go())


def test_browse_the_app(served: Run, client_cert: Cert) -> None:
    async def go() -> None:
        async with ua_client(served, client_cert, "vera") as client:
            idx = await ns(client)
            app = await client.nodes.objects.get_child([f"{idx}:vplc", f"{idx}:bioreactor"])
            names = {(await c.read_browse_name()).Name for c in await app.get_children()}
            assert names >= {"State", "Points", "Parameters", "Tasks", "Batch", "Version"}
            points = await node(client, idx, "Points").get_children()
            assert {(await p.read_browse_name()).Name for p in points} >= {"TT101", "AT201"}
            assert len(points) == 21
            assert (await points[0].read_type_definition()) == ua.NodeId(
                ua.ObjectIds.AnalogItemType
            )
            tasks = await node(client, idx, "Tasks").get_children()
            assert {(await t.read_browse_name()).Name for t in tasks} == {"control", "sequence"}
            phase = node(client, idx, "Batch.batch.phase")
            methods = {(await m.read_browse_name()).Name for m in await phase.get_methods()}
            assert methods == {"Start", "Hold", "Restart", "Stop", "Abort", "Reset"}

    asyncio.run(go())


def test_points_carry_units_range_quality_and_cycle_time(served: Run, client_cert: Cert) -> None:
    async def go() -> None:
        async with ua_client(served, client_cert, "vera") as client:
            idx = await ns(client)
            tt = node(client, idx, "Points.TT101")
            rng = await (await tt.get_child("0:EURange")).read_value()
            assert (rng.Low, rng.High) == (0.0, 150.0)
            units = {}
            for name in ("TT101", "AT201", "AT301", "FT701", "FT702", "ST601", "AT502"):
                eu = await (
                    await node(client, idx, f"Points.{name}").get_child("0:EngineeringUnits")
                ).read_value()
                assert eu.NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"
                units[name] = eu.UnitId
            assert units == {
                "TT101": unit_id("CEL"),
                "AT201": unit_id("Q30"),
                "AT301": unit_id("P1"),
                "FT701": unit_id("E32"),
                "FT702": unit_id("41"),
                "ST601": unit_id("RPM"),
                "AT502": unit_id("GL"),
            }
            dv = await tt.read_data_value()
            assert dv.StatusCode.is_good()
            assert dv.Value.VariantType == ua.VariantType.Float
            assert 0.0 < dv.Value.Value < 150.0
            # The source timestamp is the cycle's: close to now, before the server's stamp.
            assert dv.SourceTimestamp is not None and dv.ServerTimestamp is not None
            age = (datetime.now(UTC) - dv.SourceTimestamp.replace(tzinfo=UTC)).total_seconds()
            assert -1.0 < age < 5.0
            assert dv.SourceTimestamp <= dv.ServerTimestamp

    asyncio.run(go())


def test_unit_ids_pack_the_unece_code() -> None:
    # OPC 10000-8 §5.6.3's own example: degree Celsius "CEL" is 4408652.
    assert unit_id("CEL") == 4408652
    assert unit_id("41") == (ord("4") << 8) | ord("1")


class _Changes:
    def __init__(self) -> None:
        self.values: list[tuple[Any, Any]] = []

    def datachange_notification(self, n: Any, val: Any, data: Any) -> None:
        self.values.append((n, val))


def test_subscription_delivers_data_changes(served: Run, client_cert: Cert) -> None:
    async def go() -> list[tuple[Any, Any]]:
        async with ua_client(served, client_cert, "vera") as client:
            idx = await ns(client)
            handler = _Changes()
            sub = await client.create_subscription(100, handler)
            cycles = node(client, idx, "Tasks.control.Cycles")
            tt = node(client, idx, "Points.TT101")
            await sub.subscribe_data_change([cycles, tt])
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                seen = {n.nodeid.Identifier for n, _ in handler.values}
                counts = [
                    v for n, v in handler.values if n.nodeid.Identifier == "Tasks.control.Cycles"
                ]
                if seen == {"Tasks.control.Cycles", "Points.TT101"} and len(counts) >= 3:
                    break
                await asyncio.sleep(0.1)
            await sub.delete()
            return handler.values

    values = asyncio.run(go())
    cycles = [v for n, v in values if n.nodeid.Identifier == "Tasks.control.Cycles"]
    assert len(cycles) >= 3, values
    assert cycles == sorted(cycles) and cycles[-1] > cycles[0]  # the scan keeps counting
    assert any(n.nodeid.Identifier == "Points.TT101" for n, _ in values)


def test_a_written_parameter_reads_back_at_once_every_time(served: Run, client_cert: Cert) -> None:
    """Read-after-write: once a write is Good, every read returns its value, never the one
    before it (the value of the sample before the write, or an older text from the pipe)."""

    async def go() -> list[tuple[float, Any]]:
        misses: list[tuple[float, Any]] = []
        async with ua_client(served, client_cert, "olga") as client:
            sp = node(client, await ns(client), "Parameters.agitation_rpm")
            # Back to back (within the per-user burst of 20): the scan samples a write's value
            # while the next write is on its way, so that text is still queued when the next
            # answer goes down the pipe, and reaches the child after it.
            for i in range(12):
                value = (175.5, 150.25)[i % 2]  # each write's old value is the other one
                await sp.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Float)))
                for _ in range(3):
                    got = await sp.read_value()
                    if got != value:
                        misses.append((value, got))
        return misses

    assert asyncio.run(go()) == []


def test_operator_writes_a_parameter_through_the_command_path(
    served: Run, client_cert: Cert
) -> None:
    async def go() -> Any:
        async with ua_client(served, client_cert, "olga") as client:
            idx = await ns(client)
            sp = node(client, idx, "Parameters.do_sp")
            before = await sp.read_value()
            await sp.write_value(ua.DataValue(ua.Variant(42.5, ua.VariantType.Float)))
            # Read back what the running app holds (the engine's value, sent by the scan).
            after = await _wait_value(sp, {42.5}, 5)
            # 41.3 has no exact binary32: the app gets what the operator typed, not 41.29999…
            await sp.write_value(ua.DataValue(ua.Variant(41.3, ua.VariantType.Float)))
            return before, after

    before, after = asyncio.run(go())
    assert after == 42.5
    records = _records(served, user="olga", cmd="set_parameter", target="do_sp")
    assert records, served.audit()
    first, last = records[-2], records[-1]
    assert first["status"] == "accepted" and first["role"] == "operator"
    assert first["old"] == before and first["new"] == 42.5
    assert first["source"] == f"opcua:{served.url}"
    assert last["status"] == "accepted" and (last["old"], last["new"]) == (42.5, 41.3)


def test_float_writes_keep_the_decimal_the_operator_typed() -> None:
    for typed in (36.6, 0.1, 7.05, 42.5, 1e-7):
        as_float32 = struct.unpack("<f", struct.pack("<f", typed))[0]
        assert shortest_float32(as_float32) == typed
    assert shortest_float32(1 / 3) != 1 / 3  # a double that is no Float is rounded to one


def test_refused_writes_answer_with_status_codes_and_are_audited(
    served: Run, client_cert: Cert
) -> None:
    async def write(user: str, value: ua.Variant) -> int:
        async with ua_client(served, client_cert, user) as client:
            sp = node(client, await ns(client), "Parameters.temp_sp")
            try:
                await sp.write_value(ua.DataValue(value))
            except UaStatusCodeError as exc:
                return _code(exc)
            return ua.StatusCodes.Good

    async def go() -> list[int]:
        return [
            await write("olga", ua.Variant(45.0, ua.VariantType.Double)),
            await write("olga", ua.Variant("hot", ua.VariantType.String)),
            await write("vera", ua.Variant(38.0, ua.VariantType.Float)),
        ]

    codes = asyncio.run(go())
    assert codes == [
        ua.StatusCodes.BadOutOfRange,
        ua.StatusCodes.BadTypeMismatch,
        ua.StatusCodes.BadUserAccessDenied,
    ]
    olga = _records(served, user="olga", cmd="set_parameter", target="temp_sp")
    vera = _records(served, user="vera", cmd="set_parameter", target="temp_sp")
    assert [r["status"] for r in olga[-2:]] == ["refused", "refused"]
    assert "above max 40.0" in olga[-2]["reason"]
    assert "expected REAL number" in olga[-1]["reason"]
    assert vera and vera[-1]["status"] == "refused" and "needs role" in vera[-1]["reason"]


def test_points_are_read_only_and_unknown_nodes_said_so(served: Run, client_cert: Cert) -> None:
    async def write(client: Any, path: str) -> int:
        try:
            await node(client, await ns(client), path).write_value(
                ua.DataValue(ua.Variant(20.0, ua.VariantType.Float))
            )
        except UaStatusCodeError as exc:
            return _code(exc)
        return ua.StatusCodes.Good

    async def go() -> list[int]:
        async with ua_client(served, client_cert, "erik") as client:
            idx = await ns(client)
            try:  # a phase method called on another object than its phase
                await node(client, idx, "Points").call_method(
                    ua.NodeId("Batch.batch.phase.Hold", idx)
                )
                wrong: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                wrong = _code(exc)
            return [
                await write(client, "Points.TT101"),
                await write(client, "Parameters.no_such"),
                await write(client, "Tasks.control.Cycles"),
                wrong,
            ]

    assert asyncio.run(go()) == [
        ua.StatusCodes.BadNotWritable,
        ua.StatusCodes.BadNodeIdUnknown,
        ua.StatusCodes.BadNotWritable,
        ua.StatusCodes.BadMethodInvalid,
    ]
    assert not _records(served, user="erik", cmd="phase", target="batch.phase:HOLD")


def test_hold_and_restart_the_batch_phase(served: Run, client_cert: Cert) -> None:
    async def go() -> tuple[Any, ...]:
        async with ua_client(served, client_cert, "vera") as viewer:
            idx = await ns(viewer)
            phase = node(viewer, idx, "Batch.batch.phase")
            try:
                await phase.call_method(ua.NodeId("Batch.batch.phase.Hold", idx))
                denied: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                denied = _code(exc)
            state = node(viewer, idx, "Batch.batch.phase.State")
            running = await _wait_value(state, {"RUNNING"}, 10)
        async with ua_client(served, client_cert, "olga") as op:
            phase = node(op, idx, "Batch.batch.phase")
            await phase.call_method(ua.NodeId("Batch.batch.phase.Hold", idx))
            state = node(op, idx, "Batch.batch.phase.State")
            held = await _wait_value(state, {"HELD"}, 10)
            try:  # HOLD again while HELD: the phase refuses it, said as a state error
                await phase.call_method(ua.NodeId("Batch.batch.phase.Hold", idx))
                again: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                again = _code(exc)
            await phase.call_method(ua.NodeId("Batch.batch.phase.Restart", idx))
            back = await _wait_value(state, {"RUNNING"}, 10)
        return denied, running, held, again, back

    denied, running, held, again, back = asyncio.run(go())
    assert denied == ua.StatusCodes.BadUserAccessDenied
    assert running == "RUNNING" and held == "HELD" and back == "RUNNING"
    assert again == ua.StatusCodes.BadInvalidState
    holds = _records(served, user="olga", cmd="phase", target="batch.phase:HOLD")
    assert [r["status"] for r in holds[-2:]] == ["accepted", "refused"]
    assert holds[-2]["old"] == "RUNNING" and holds[-2]["new"] == "HOLDING"
    assert (
        _records(served, user="vera", cmd="phase", target="batch.phase:HOLD")[-1]["status"]
        == "refused"
    )


def test_unknown_client_certificate_is_rejected_until_trusted(served: Run, tmp_path: Path) -> None:
    key, cert = tmp_path / "other-key.pem", tmp_path / "other-cert.der"
    asyncio.run(
        setup_self_signed_certificate(
            key,
            cert,
            "urn:vplc:test-client",
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "unknown client"},
        )
    )
    pki = served.folder / "state" / "opcua" / "bioreactor"

    async def state() -> str:
        async with ua_client(served, (cert, key), "vera") as client:
            return str(await node(client, await ns(client), "State").read_value())

    with pytest.raises(UaStatusCodeError) as refused:
        asyncio.run(state())
    assert _code(refused.value) == ua.StatusCodes.BadCertificateUntrusted
    rejected = [p for p in (pki / "rejected").iterdir() if p.read_bytes() == cert.read_bytes()]
    assert len(rejected) == 1
    rejected[0].rename(pki / "trusted" / rejected[0].name)  # what an administrator does
    assert asyncio.run(state()) == "RUN"


def test_hal_quality_maps_to_status_codes() -> None:
    from hal import Quality
    from runtime.opcua._sampler import status_of

    codes = {
        (q.name, forced): status_of(int(q), forced).value
        for q in Quality
        for forced in (False, True)
    }
    assert codes[("GOOD", False)] == ua.StatusCodes.Good
    assert codes[("GOOD", True)] == ua.StatusCodes.GoodLocalOverride  # forced: not the field's
    assert codes[("UNCERTAIN", False)] == ua.StatusCodes.Uncertain
    assert codes[("BAD", False)] == codes[("BAD", True)] == ua.StatusCodes.Bad


def test_alarms_are_browsable_and_acknowledged_through_the_command_path(
    served: Run, client_cert: Cert
) -> None:
    async def go() -> tuple[Any, ...]:
        async with ua_client(served, client_cert, "vera") as viewer:
            idx = await ns(viewer)
            alarms = await node(viewer, idx, "Alarms").get_children()
            paths = {(await a.read_browse_name()).Name for a in alarms}
            temp = node(viewer, idx, "Alarms.alarms.temp")
            names = {(await c.read_browse_name()).Name for c in await temp.get_children()}
            severity = await node(viewer, idx, "Alarms.alarms.temp.Severity").read_value()
            message = await node(viewer, idx, "Alarms.alarms.temp.Message").read_value()
            try:
                await temp.call_method(ua.NodeId("Alarms.alarms.temp.Acknowledge", idx))
                denied: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                denied = _code(exc)
        async with ua_client(served, client_cert, "olga") as op:
            temp = node(op, idx, "Alarms.alarms.temp")
            await temp.call_method(ua.NodeId("Alarms.alarms.temp.Acknowledge", idx))
            try:  # the method of another alarm called on this object
                await temp.call_method(ua.NodeId("Alarms.alarms.ph_alarm.Acknowledge", idx))
                wrong: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                wrong = _code(exc)
            acked = await _wait_value(node(op, idx, "Alarms.alarms.temp.Acked"), {True}, 10)
        return paths, names, severity, message, denied, wrong, acked

    paths, names, severity, message, denied, wrong, acked = asyncio.run(go())
    assert {"alarms.temp", "alarms.ph_alarm", "alarms.do_alarm", "alarms.level"} <= paths
    assert names >= {"Active", "Acked", "Severity", "HighActive", "LowActive", "Message",
                     "BadQualityActive", "Acknowledge"}  # fmt: skip
    assert severity in (0, 500, 900) and isinstance(message, str)
    assert denied == ua.StatusCodes.BadUserAccessDenied
    assert wrong == ua.StatusCodes.BadMethodInvalid
    assert acked is True
    ok = _records(served, user="olga", cmd="ack_alarm", target="alarms.temp")
    assert ok and ok[-1]["status"] == "accepted", ok
    refused = _records(served, user="vera", cmd="ack_alarm", target="alarms.temp")
    assert refused and refused[-1]["status"] == "refused", refused


def test_programs_show_the_instance_tree_read_only(served: Run, client_cert: Cert) -> None:
    async def go() -> tuple[Any, ...]:
        async with ua_client(served, client_cert, "erik") as client:
            idx = await ns(client)
            programs = await node(client, idx, "Programs").get_children()
            names = {(await p.read_browse_name()).Name for p in programs}
            pid = node(client, idx, "Programs.loops.tic101")
            leaves = {(await c.read_browse_name()).Name: c for c in await pid.get_children()}
            groups = {n: (await c.read_description()).Text for n, c in leaves.items()}
            out = await node(client, idx, "Programs.loops.tic101.OUT").read_value()
            seen = []
            for _ in range(30):  # a program variable follows the scan, about once a second
                seen.append(await node(client, idx, "Programs.batch.step_time").read_value())
                if len(set(seen)) > 1:
                    break
                await asyncio.sleep(0.2)
            step = await node(client, idx, "Programs.batch.step").read_value()
            try:
                await node(client, idx, "Programs.loops.tic101.OUT").write_value(
                    ua.DataValue(ua.Variant(1.0, ua.VariantType.Double))
                )
                write: int = ua.StatusCodes.Good
            except UaStatusCodeError as exc:
                write = _code(exc)
            return names, groups, out, seen, step, write

    names, groups, out, seen, step, write = asyncio.run(go())
    assert {"loops", "batch", "alarms"} <= names
    assert groups.get("OUT") == "block output" and groups.get("SP") == "block input", groups
    assert any(g == "block state" for g in groups.values()), groups
    assert out != 0.0  # the PID's output as the scan computed it (heating up: non-zero)
    assert len(set(seen)) > 1, f"batch.step_time never changed: {seen}"
    assert isinstance(step, str) and step
    assert write == ua.StatusCodes.BadNotWritable
