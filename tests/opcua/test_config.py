"""`vplc run --opcua`: a broken config is exit 2 naming the key; None is warned; the certificate."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from asyncua import Client, ua
from asyncua.ua.uaerrors import UaStatusCodeError
from cryptography import x509

from runtime.opcua import OpcuaConfig, load_opcua_config
from runtime.opcua._pki import ensure_certificate
from tests.conftest import write_access
from tests.opcua.conftest import APP, NAMESPACE, VPLC, Run, start_run, stop_run


def _run_with(tmp_path: Path, cfg: object, *extra: str) -> subprocess.CompletedProcess[str]:
    write_access(tmp_path, commands={})
    path = tmp_path / "opcua.yaml"
    path.write_text(yaml.safe_dump(cfg) if not isinstance(cfg, str) else cfg)
    return subprocess.run(
        [VPLC, "run", str(APP), "--opcua", str(path), "--no-view", "--duration", "1", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env={"VPLC_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    ("cfg", "named"),
    [
        ({"access_file": "access.yaml", "prot": 4840}, "at prot: unknown key"),
        ({"access_file": "access.yaml", "port": 70000}, "at port:"),
        (
            {"access_file": "access.yaml", "security_policies": ["Basic128Rsa15"]},
            "security_policies.0",
        ),
        ({"port": 4840}, "access_file: required unless anonymous"),
        ({"access_file": "access.yaml", "sample_ms": 1}, "at sample_ms:"),
        (
            {"access_file": "access.yaml", "max_subscriptions_per_session": 0},
            "at max_subscriptions_per_session:",
        ),
        (
            {"access_file": "access.yaml", "max_monitored_items_per_session": "many"},
            "at max_monitored_items_per_session:",
        ),
        (
            {"access_file": "access.yaml", "min_publishing_interval_ms": 1},
            "at min_publishing_interval_ms:",
        ),
        ({"access_file": "access.yaml", "max_queue_size": 100_000}, "at max_queue_size:"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_broken_config_is_exit_2_naming_the_key(tmp_path: Path, cfg: object, named: str) -> None:
    res = _run_with(tmp_path, cfg)
    assert res.returncode == 2, res.stderr
    assert "opcua.yaml" in res.stderr and named in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_a_virtual_run_refuses_opcua(tmp_path: Path) -> None:
    res = _run_with(tmp_path, {"access_file": "access.yaml"}, "--virtual")
    assert res.returncode == 2 and "--opcua needs real time" in res.stderr


def test_relative_paths_resolve_against_the_config(tmp_path: Path) -> None:
    path = tmp_path / "opcua.yaml"
    path.write_text(yaml.safe_dump({"access_file": "a.yaml", "pki_dir": "pki"}))
    cfg = load_opcua_config(path)
    assert cfg.access_file == tmp_path / "a.yaml" and cfg.pki_dir == tmp_path / "pki"
    assert cfg.security_policies == [
        "Basic256Sha256",
        "Aes128_Sha256_RsaOaep",
        "Aes256_Sha256_RsaPss",
    ]
    assert not cfg.anonymous and not cfg.insecure


def test_certificate_is_made_once_and_kept(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path / "pki", app_uri="urn:vplc:h:app", app_name="app")
    der, key = first.cert.read_bytes(), first.key.read_bytes()
    assert first.key.stat().st_mode & 0o777 == 0o600
    again = ensure_certificate(tmp_path / "pki", app_uri="urn:vplc:h:app", app_name="app")
    assert again.cert.read_bytes() == der and again.key.read_bytes() == key
    cert = x509.load_der_x509_certificate(der)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:vplc:h:app" in sans.get_values_for_type(x509.UniformResourceIdentifier)
    # Another application URI needs another certificate; the key is kept.
    moved = ensure_certificate(tmp_path / "pki", app_uri="urn:vplc:h:other", app_name="app")
    assert moved.cert.read_bytes() != der and moved.key.read_bytes() == key
    assert (tmp_path / "pki" / "trusted").is_dir() and (tmp_path / "pki" / "rejected").is_dir()


def test_policy_none_and_anonymous_only_when_configured(tmp_path: Path) -> None:
    run = start_run(
        tmp_path,
        extra={
            "security_policies": ["Basic256Sha256", "None"],
            "anonymous": True,
            "max_message_bytes": 65536,
        },
        duration=60,
    )
    try:
        cert = tmp_path / "state" / "opcua" / "bioreactor" / "server-cert.der"
        assert cert.exists()  # made at first start, in the state directory
        state, write = asyncio.run(_anonymous_over_none(run))
        huge = asyncio.run(_huge_write(run))
        after, _ = asyncio.run(_anonymous_over_none(run))  # the server still serves
    finally:
        log = stop_run(run)
    assert state == "RUN" and after == "RUN"
    assert huge is not None and "BadRequestTooLarge" in repr(huge)
    assert write == ua.StatusCodes.BadUserAccessDenied  # anonymous reads, never writes
    assert "opcua_security_none" in log
    assert run.proc.returncode == 0, log
    refusals = [r for r in run.audit() if r.get("event") == "command_refusals"]
    # The two anonymous writes; the huge one never got past the transport.
    assert refusals and refusals[-1]["counts"].get("unauthenticated") == 2


async def _huge_write(run: Run) -> BaseException | None:
    """A 1 MiB write against a 64 KiB message limit."""
    try:
        async with Client(run.url, timeout=5) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            sp = client.get_node(ua.NodeId("Parameters.temp_sp", idx))
            await sp.write_value(ua.DataValue(ua.Variant("x" * (1 << 20), ua.VariantType.String)))
    except Exception as exc:
        return exc
    return None


async def _anonymous_over_none(run: Run) -> tuple[str, int]:
    client = Client(run.url, timeout=10)
    async with client:
        idx = await client.get_namespace_index(NAMESPACE)
        state = await client.get_node(ua.NodeId("State", idx)).read_value()
        sp = client.get_node(ua.NodeId("Parameters.temp_sp", idx))
        try:
            await sp.write_value(ua.DataValue(ua.Variant(38.0, ua.VariantType.Float)))
            code: int = ua.StatusCodes.Good
        except UaStatusCodeError as exc:
            code = int(exc.code)
    return str(state), code


def test_config_model_forbids_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        OpcuaConfig.model_validate({"anonymous": True, "colour": "red"})


def test_a_taken_port_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = _run_with(tmp_path, {"access_file": "access.yaml", "host": "127.0.0.1", "port": port})
    assert res.returncode == 2, res.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr


def test_an_unwritable_certificate_folder_is_exit_2(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    res = _run_with(tmp_path, {"access_file": "access.yaml", "pki_dir": str(blocked)})
    assert res.returncode == 2, res.stderr
    assert "certificate folder" in res.stderr and "file-not-folder" in res.stderr


def test_the_example_config_is_valid_and_all_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "runtime" / "opcua" / "examples" / "opcua.yaml"
    cfg = load_opcua_config(example)
    defaults = OpcuaConfig(access_file=cfg.access_file, audit_file=cfg.audit_file)
    assert cfg == defaults
