"""Interoperability: node-opcua (an independent OPC UA stack, from npm) as vplc's client."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.opcua import unit_id
from tests._node import npm_project
from tests.opcua.conftest import PASSWORDS, Run, start_run, stop_run

INTEROP = Path(__file__).resolve().parent / "interop"


def _ensure_node_client() -> str:
    """node and the pinned node-opcua packages (npm ci from package-lock.json), as `make
    opcua-interop` installs them; installed here when missing, like the MQTT tests' broker."""
    return npm_project(INTEROP, "node-opcua-client", "the OPC UA interop test")


@pytest.fixture(scope="module")
def node_bin() -> str:
    return _ensure_node_client()


def _node_client(node_bin: str, run: Run, pki: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            node_bin,
            str(INTEROP / "client.js"),
            run.url,
            str(pki),
            f"olga:{PASSWORDS['olga']}",
            f"vera:{PASSWORDS['vera']}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """A run of its own: node-opcua's certificate is not trusted at first."""
    run = start_run(tmp_path_factory.mktemp("opcua-interop"))
    yield run
    stop_run(run)


def test_node_opcua_browses_reads_subscribes_writes_and_calls(
    served: Run, node_bin: str, tmp_path: Path
) -> None:
    pki = served.folder / "state" / "opcua" / "bioreactor"
    first = _node_client(node_bin, served, tmp_path / "pki")
    # Its own certificate, made at its first start, is unknown: refused and kept for review.
    assert first.returncode != 0 and "BadCertificateUntrusted" in first.stderr, first.stderr
    rejected = list((pki / "rejected").glob("urn_vplc_interop_node-opcua-*.der"))
    assert len(rejected) == 1, list((pki / "rejected").iterdir())
    rejected[0].rename(pki / "trusted" / rejected[0].name)
    res = _node_client(node_bin, served, tmp_path / "pki")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"TT101", "AT201", "P401H"} <= set(out["points"])
    assert out["tt101"]["status"] == "Good" and 0 < out["tt101"]["value"] < 150
    assert out["tt101_unit"] == unit_id("CEL")
    cycles = out["cycles"]
    assert len(cycles) >= 3 and cycles == sorted(cycles) and cycles[-1] > cycles[0]
    assert out["write"] == "Good" and out["agitation_rpm"] == 160
    assert out["write_out_of_range"] == "BadOutOfRange"
    assert out["hold"] == "Good" and out["state_after_hold"] == "HELD"
    assert out["restart"] == "Good"
    assert out["viewer_write"] == "BadUserAccessDenied"
    assert {"alarms.temp", "alarms.ph_alarm", "alarms.do_alarm"} <= set(out["alarms"])
    assert {"Active", "Acked", "Severity", "Message", "Acknowledge"} <= set(out["alarm_children"])
    assert out["ack"] == "Good" and out["acked"] is True
    assert out["viewer_ack"] == "BadUserAccessDenied"
    assert {"loops", "alarms", "batch"} <= set(out["programs"])
    assert {"SP", "PV", "OUT", "KC", "I"} <= set(out["pid_children"])
    assert out["pid_out"]["status"] == "Good" and isinstance(
        out["pid_out"]["value"], int | float
    )  # JSON: 60.0 is 60
    writes = [
        r
        for r in served.audit()
        if r.get("cmd") == "set_parameter" and r.get("target") == "agitation_rpm"
    ]
    assert [(r["user"], r["status"]) for r in writes[-3:]] == [
        ("olga", "accepted"),
        ("olga", "refused"),
        ("vera", "refused"),
    ]
