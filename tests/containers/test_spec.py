"""Deployment files: schema errors name the YAML path; privileged and secrets rules (no engine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from containers._errors import InvalidInputError
from containers._spec import Deployment, load_deployment, parse_cpuset, parse_memory


def write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "dep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_minimal_file_gets_safe_defaults(tmp_path: Path) -> None:
    dep = load_deployment(write(tmp_path, {"name": "bio1", "image": "vplc-bioreactor:1.0.0"}))
    assert dep.restart == "unless-stopped"
    assert dep.network_mode == "bridge"
    assert not dep.privileged
    assert dep.volume == "vplc-bio1-state"
    assert dep.resources.memory_bytes == 256 * 1024**2


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"imge": "x"}, "at imge: unknown key"),
        ({"resources": {"memroy": "1g"}}, "at resources.memroy: unknown key"),
        ({"resources": {"memory": "16m"}}, "at resources.memory: 16m is below the minimum of 64m"),
        ({"resources": {"memory": "lots"}}, "at resources.memory: expected a size"),
        ({"resources": {"cpuset": "3-1"}}, "at resources.cpuset: range '3-1' runs backwards"),
        ({"resources": {"cpus": 0}}, "at resources.cpus: Input should be greater than 0"),
        ({"restart": "sometimes"}, "at restart: Input should be"),
        ({"privileged": True}, "refused unless the file also says allow_privileged: true"),
        ({"environment": {"MQTT_PASSWORD": "x"}}, "put secrets under credentials"),
        ({"name": "Bad Name"}, "at name: String should match pattern"),
    ],
)
def test_bad_files_are_refused_with_the_yaml_path(
    tmp_path: Path, doc: dict[str, object], expected: str
) -> None:
    full = {"name": "bio1", "image": "vplc-bioreactor:1.0.0", **doc}
    path = write(tmp_path, full)
    with pytest.raises(InvalidInputError) as err:
        load_deployment(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)
    assert err.value.exit_code == 2


def test_missing_keys_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="at image: required key is missing"):
        load_deployment(write(tmp_path, {"name": "bio1"}))
    with pytest.raises(InvalidInputError, match="expected a mapping"):
        load_deployment(write(tmp_path, ["a"]))
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_deployment(tmp_path / "nope.yaml")


def test_privileged_needs_explicit_allowance() -> None:
    dep = Deployment(name="x", image="i", privileged=True, allow_privileged=True)
    assert dep.privileged


def test_credentials_come_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "creds.env").write_text("# broker login\nMQTT_USER=plc\nMQTT_PASSWORD=s3cret\n")
    monkeypatch.setenv("EXTRA_TOKEN", "t0k")
    dep = Deployment.model_validate(
        {
            "name": "x",
            "image": "i",
            "credentials": {"env_file": "creds.env", "from_env": ["EXTRA_TOKEN"]},
        }
    )
    assert dep.credentials.resolve(tmp_path) == {
        "MQTT_USER": "plc",
        "MQTT_PASSWORD": "s3cret",
        "EXTRA_TOKEN": "t0k",
    }
    monkeypatch.delenv("EXTRA_TOKEN")
    with pytest.raises(InvalidInputError, match="EXTRA_TOKEN is not set"):
        dep.credentials.resolve(tmp_path)


def test_size_and_cpuset_parsers() -> None:
    assert parse_memory("1g") == 1024**3
    assert parse_memory("512MiB") == 512 * 1024**2
    assert parse_cpuset("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(ValueError):
        parse_cpuset("a")


def test_served_front_ends_and_published_ports_are_checked(tmp_path: Path) -> None:
    base = {"name": "x", "image": "i"}
    served = Deployment.model_validate(
        base
        | {
            "config_dir": "etc",
            "serve": {"web": "web.yaml", "opcua": "ua/opcua.yaml"},
            "ports": {8080: 18080, 4840: 14840},
        }
    )
    assert served.serve.flags("/etc/vplc") == [
        "--opcua", "/etc/vplc/ua/opcua.yaml", "--web-config", "/etc/vplc/web.yaml",
    ]  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"serve.opcua \(--opcua\): .*ua/opcua.yaml is not"):
        served.relative_to(tmp_path)  # the files must be there when it is deployed
    with pytest.raises(InvalidInputError, match=r"^/x/dep.yaml: at serve.opcua"):
        served.relative_to(tmp_path, source="/x/dep.yaml")  # the message names the file
    (tmp_path / "etc" / "ua").mkdir(parents=True)
    for name in ("web.yaml", "ua/opcua.yaml"):
        (tmp_path / "etc" / name).write_text("{}\n")
    assert served.relative_to(tmp_path).config_dir == tmp_path / "etc"
    refusals = {
        "config_dir: serve needs the folder holding 'web.yaml'": {"serve": {"web": "web.yaml"}},
        "without '..'": {"config_dir": "etc", "serve": {"web": "../web.yaml"}},
        "ports need network_mode bridge, not host": {"network_mode": "host", "ports": {80: 80}},
        "ports are 1..65535": {"ports": {0: 80}},
        "same host port": {"ports": {80: 8080, 81: 8080}},
        "cannot publish the same host port": {
            "strategy": "blue-green",
            "config_dir": "etc",
            "ports": {80: 8080},
        },
        "not available for target swarm": {"target": "swarm", "ports": {80: 8080}},
    }
    for message, fields in refusals.items():
        with pytest.raises(InvalidInputError, match=re.escape(message)):
            load_deployment(write(tmp_path, base | fields))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("name: café\n".encode("latin-1"), "not UTF-8 text"),  # was a UnicodeDecodeError
        (b"name: " + b"[" * 3000 + b"]" * 3000, "nesting depth"),  # was a RecursionError
        (b"name: x\nimage: i\nresources: {cpus: .inf}\n", "at resources.cpus: expected a finite"),
    ],
)
def test_unreadable_files_are_refused_naming_the_file(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = tmp_path / "dep.yaml"
    path.write_bytes(data)
    with pytest.raises(InvalidInputError) as err:
        load_deployment(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "dep.yaml")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_deployment(tmp_path / "dep.yaml")


def test_a_huge_cpuset_range_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="above 8191"):
        parse_cpuset("0-99999999999")  # was a set of 10^11 numbers: a hang, then no memory
    assert parse_cpuset("0-1,8191") == [0, 1, 8191]


def test_a_served_file_name_too_long_is_refused_naming_the_key(tmp_path: Path) -> None:
    dep = Deployment(name="x", image="i", config_dir=tmp_path, serve={"web": "w" * 300})
    with pytest.raises(InvalidInputError, match=r"at serve.web \(--web-config\): .* cannot be"):
        dep.relative_to(tmp_path)  # was OSError ENAMETOOLONG from Path.is_file()
