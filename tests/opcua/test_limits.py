"""The command policy of the access file holds for OPC UA writes as for MQTT commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from asyncua import ua
from asyncua.ua.uaerrors import UaStatusCodeError

from tests.opcua.conftest import node, ns, start_run, stop_run, ua_client

Cert = tuple[Path, Path]


# The runtime-wide limit's refusal words hold no "commands/s", which the gateway once looked
# for: it answered BadInvalidState. The refusal's code decides now.
@pytest.mark.parametrize("scope", ["user", "global"])
def test_a_rate_limit_refuses_writes_beyond_the_burst(
    tmp_path: Path, client_cert: Cert, scope: str
) -> None:
    run = start_run(
        tmp_path,
        duration=60,
        commands={f"{scope}_rate": 0.1, f"{scope}_burst": 2},
        trust=(client_cert[0],),
    )

    async def go() -> list[int]:
        codes = []
        async with ua_client(run, client_cert, "olga") as client:
            sp = node(client, await ns(client), "Parameters.ph_sp")
            for value in (7.1, 7.2, 7.3):
                try:
                    await sp.write_value(ua.DataValue(ua.Variant(value, ua.VariantType.Float)))
                    codes.append(int(ua.StatusCodes.Good))
                except UaStatusCodeError as exc:
                    codes.append(int(exc.code))
        return codes

    try:
        codes = asyncio.run(go())
    finally:
        stop_run(run)
    assert codes == [ua.StatusCodes.Good, ua.StatusCodes.Good, ua.StatusCodes.BadTooManyOperations]
    # Rate-limited commands are counted in the refusal summary, as for MQTT (no record each).
    summary = [r for r in run.audit() if r.get("event") == "command_refusals"]
    assert summary and summary[-1]["rate_limited_users"] == {"olga": 1}
    accepted = [r for r in run.audit() if r.get("target") == "ph_sp"]
    assert [r["new"] for r in accepted] == [7.1, 7.2]
