"""Deployment files: pydantic models, YAML loading, errors that carry the YAML path."""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from containers._errors import InvalidInputError
from runtime.core._yaml import YamlError, read_yaml_file

__all__ = [
    "MIN_MEMORY",
    "BlueGreenOptions",
    "Credentials",
    "Deployment",
    "Resources",
    "RestartPolicy",
    "Strategy",
    "SwarmOptions",
    "Target",
    "UpdateOrder",
    "load_deployment",
    "parse_cpuset",
    "parse_memory",
]

# The runtime with pydantic, structlog and the bioreactor app resides in ~45 MiB; below 64 MiB
# a deployment would be OOM-killed at start-up or under the first burst of allocations.
MIN_MEMORY = 64 * 1024**2
MAX_CPU = 8191  # CONFIG_NR_CPUS is at most 8192
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


class RestartPolicy(StrEnum):
    NO = "no"
    ON_FAILURE = "on-failure"
    UNLESS_STOPPED = "unless-stopped"
    ALWAYS = "always"


class NetworkMode(StrEnum):
    BRIDGE = "bridge"
    NONE = "none"
    HOST = "host"


class Target(StrEnum):
    """Where a deployment runs: a container on one engine, or a Docker Swarm service."""

    CONTAINER = "container"
    SWARM = "swarm"


class UpdateOrder(StrEnum):
    STOP_FIRST = "stop-first"
    START_FIRST = "start-first"


class Strategy(StrEnum):
    """How ``vplc update`` replaces a container deployment (containers/_bluegreen_deploy.py)."""

    RECREATE = "recreate"  # stop-and-restart on the same state volume
    BLUE_GREEN = "blue-green"  # standby container + handover of the outputs over MQTT


def parse_memory(text: str | int) -> int:
    """``256m`` / ``1g`` / bytes → bytes."""
    m = re.fullmatch(r"(\d+)\s*([bkmg]?)i?b?", str(text).strip().lower())
    if not m:
        raise ValueError(f"expected a size like 256m or 1g, got {text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_cpuset(text: str) -> list[int]:
    """Docker's cpuset syntax (``0``, ``0-1``, ``0,2``) → sorted CPU numbers."""
    cpus: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"expected CPU numbers like '1' or '0-1,3', got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"range {part.strip()!r} runs backwards")
        if hi > MAX_CPU:  # also keeps '0-99999999999' from building a set of 10^11 numbers
            raise ValueError(f"CPU {hi} in {part.strip()!r} is above {MAX_CPU} (Linux's limit)")
        cpus.update(range(lo, hi + 1))
    return sorted(cpus)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Strict):
    """Limits: the scan gets its CPUs (cpuset) and a hard memory ceiling without swap."""

    memory: str = "256m"
    cpus: float = Field(default=1.0, gt=0, description="CPU time quota in cores")
    cpuset: str | None = Field(default=None, description="CPUs to pin to, e.g. '1' or '0-1'")

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        if parse_memory(v) < MIN_MEMORY:
            raise ValueError(f"{v} is below the minimum of {MIN_MEMORY // 1024**2}m")
        return v

    @field_validator("cpuset")
    @classmethod
    def _cpuset(cls, v: str | None) -> str | None:
        if v is not None:
            parse_cpuset(v)
        return v

    @property
    def memory_bytes(self) -> int:
        return parse_memory(self.memory)


class Credentials(_Strict):
    """Secrets are read when deploying, never baked into an image or a deployment file."""

    env_file: Path | None = Field(default=None, description="KEY=VALUE lines")
    from_env: list[str] = Field(default_factory=list, description="copied from the caller's env")

    def resolve(self, base: Path) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.env_file is not None:
            path = self.env_file if self.env_file.is_absolute() else base / self.env_file
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InvalidInputError(
                    f"credentials.env_file: cannot read {path}: {exc.strerror}"
                ) from None
            for line in lines:
                if line.strip() and not line.lstrip().startswith("#"):
                    key, sep, value = line.partition("=")
                    if not sep:
                        raise InvalidInputError(f"{path}: expected KEY=VALUE, got {line!r}")
                    found[key.strip()] = value.strip()
        for key in self.from_env:
            if key not in os.environ:
                raise InvalidInputError(
                    f"credentials.from_env: {key} is not set in the environment"
                )
            found[key] = os.environ[key]
        return found


class SwarmOptions(_Strict):
    """Settings used only with ``target: swarm`` (see containers/_swarm.py)."""

    update_order: UpdateOrder = UpdateOrder.STOP_FIRST
    # start-first runs two instances at once; only safe when a fencing/ownership protocol makes
    # sure just one of them writes outputs. The file author must say so explicitly.
    outputs_fenced: bool = False
    monitor_s: float = Field(default=15.0, gt=0, le=3600, description="failure watch per task")


class BlueGreenOptions(_Strict):
    """Settings used only with ``strategy: blue-green`` (see containers/_bluegreen_deploy.py)."""

    mqtt_config: str = Field(
        default="mqtt.yaml", description="the --mqtt bridge config, a file in config_dir"
    )
    plant: str | None = Field(
        default=None, description="topic prefix of the plant's write log (P/stats) for the gap"
    )
    user: str = Field(default="deployer", min_length=1, description="user in the access file")
    token_env: str = Field(
        default="VPLC_HANDOVER_TOKEN", description="deployer's env var holding that user's token"
    )
    broker_host: str | None = Field(default=None, description="as the deployer sees it")
    broker_port: int | None = Field(default=None, ge=1, le=65535)
    probation_s: float | None = Field(
        default=None, gt=0, le=3600, description="default: the deployment's probation_s"
    )
    ready_timeout_s: float = Field(default=30.0, gt=0, le=600)


_CONFIG_FILE = r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]*$"  # relative, inside config_dir


class Serve(_Strict):
    """Front-ends the runtime in the container serves (``vplc run`` flags), each configured by
    a file in ``config_dir``, which is mounted read-only on /etc/vplc."""

    opcua: str | None = Field(default=None, pattern=_CONFIG_FILE, description="--opcua FILE")
    web: str | None = Field(default=None, pattern=_CONFIG_FILE, description="--web-config FILE")
    modbus: str | None = Field(default=None, pattern=_CONFIG_FILE, description="--modbus FILE")

    @field_validator("opcua", "web", "modbus")
    @classmethod
    def _inside(cls, v: str | None) -> str | None:
        if v is not None and ".." in Path(v).parts:
            raise ValueError(f"{v!r}: a file inside config_dir, without '..'")
        return v

    def files(self) -> dict[str, str]:
        """Flag → file name, for what is set."""
        named = {"--opcua": self.opcua, "--web-config": self.web, "--modbus": self.modbus}
        return {flag: name for flag, name in named.items() if name is not None}

    def flags(self, mount: str) -> list[str]:
        return [arg for flag, name in self.files().items() for arg in (flag, f"{mount}/{name}")]


class Deployment(_Strict):
    """One app image on one node: limits, restart policy, environment, state volume."""

    name: str = Field(pattern=_NAME, description="deployment (and container) name")
    image: str = Field(min_length=1, description="e.g. vplc-bioreactor:1.0.0")
    node: str | None = Field(default=None, description="Docker engine name; None = this one")
    resources: Resources = Field(default_factory=Resources)
    restart: RestartPolicy = RestartPolicy.UNLESS_STOPPED
    environment: dict[str, str] = Field(default_factory=dict)
    credentials: Credentials = Field(default_factory=Credentials)
    state_volume: str | None = Field(default=None, description="default vplc-<name>-state")
    network_mode: NetworkMode = NetworkMode.BRIDGE
    realtime: bool = Field(default=True, description="keep CAP_SYS_NICE for SCHED_FIFO")
    rtprio: int = Field(
        default=0, ge=0, le=99, description="RLIMIT_RTPRIO: SCHED_FIFO for the non-root user"
    )
    privileged: bool = False
    allow_privileged: bool = False
    health_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    probation_s: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="watch after the first healthy check; default the longer of 10 s and 20 "
        "cycles of the slowest task (image label org.vplc.task-periods-ms)",
    )
    keep_releases: int = Field(
        default=5, ge=2, le=100, description="releases kept by image ID for rollback --to"
    )
    target: Target = Target.CONTAINER
    swarm: SwarmOptions = Field(default_factory=SwarmOptions)
    strategy: Strategy = Strategy.RECREATE
    config_dir: Path | None = Field(
        default=None, description="host folder mounted read-only on /etc/vplc"
    )
    blue_green: BlueGreenOptions = Field(default_factory=BlueGreenOptions)
    serve: Serve = Field(default_factory=Serve)
    ports: dict[int, int] = Field(
        default_factory=dict, description="container TCP port → host port (network_mode bridge)"
    )

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: dict[int, int]) -> dict[int, int]:
        for inside, outside in v.items():
            if not (1 <= inside <= 65535 and 1 <= outside <= 65535):
                raise ValueError(f"{inside}: {outside}: ports are 1..65535")
        if len(set(v.values())) != len(v):
            raise ValueError("two container ports published on the same host port")
        return v

    @model_validator(mode="after")
    def _served(self) -> Deployment:
        files = self.serve.files()
        if files and self.config_dir is None:
            first = next(iter(files.values()))
            raise ValueError(f"config_dir: serve needs the folder holding {first!r}")
        if self.ports and self.network_mode is not NetworkMode.BRIDGE:
            raise ValueError(
                f"ports: published ports need network_mode bridge, not {self.network_mode.value}"
                " (host networking serves on the node's ports as they are)"
            )
        if (files or self.ports) and self.target is Target.SWARM:
            raise ValueError("serve/ports: not available for target swarm yet (target container)")
        if self.ports and self.strategy is Strategy.BLUE_GREEN:
            raise ValueError(
                "ports: blue and green run side by side and cannot publish the same host port; "
                "reach each color on its container address (or put a proxy in front)"
            )
        return self

    def relative_to(self, base: Path, source: Path | str | None = None) -> Deployment:
        """Paths of the file (config_dir, credentials.env_file) made absolute from ``base``,
        the deployment file's folder; InvalidInputError when a served file is missing, naming
        ``source`` (the deployment file) and the key."""
        update: dict[str, Any] = {}
        config_dir = self.config_dir
        if config_dir is not None and not config_dir.is_absolute():
            update["config_dir"] = config_dir = base / config_dir
        env_file = self.credentials.env_file
        if env_file is not None and not env_file.is_absolute():
            update["credentials"] = self.credentials.model_copy(
                update={"env_file": base / env_file}
            )
        where = f"{source}: " if source is not None else ""
        for flag, name in self.serve.files().items():
            assert config_dir is not None  # _served
            try:
                why = "" if (config_dir / name).is_file() else "is not a file"
            except OSError as exc:  # a name over NAME_MAX: is_file() raises, not False
                why = f"cannot be looked up: {exc.strerror}"
            if why:
                key = {"--opcua": "opcua", "--web-config": "web", "--modbus": "modbus"}[flag]
                raise InvalidInputError(
                    f"{where}at serve.{key} ({flag}): {config_dir / name} {why}; the file "
                    "must be in config_dir, which the container sees on /etc/vplc"
                )
        return self.model_copy(update=update)

    @field_validator("environment")
    @classmethod
    def _no_secrets_inline(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if re.search(r"PASSWORD|SECRET|TOKEN|_KEY$", key.upper()):
                raise ValueError(
                    f"{key}: put secrets under credentials (env_file or from_env), not inline"
                )
        return v

    @model_validator(mode="after")
    def _privileged(self) -> Deployment:
        if self.privileged and not self.allow_privileged:
            raise ValueError(
                "privileged: a privileged container gets every device and capability of the "
                "host; refused unless the file also says allow_privileged: true"
            )
        return self

    @model_validator(mode="after")
    def _swarm_limits(self) -> Deployment:
        if self.target is not Target.SWARM:
            return self
        if self.resources.cpuset is not None:
            raise ValueError(
                "resources.cpuset: Swarm services cannot be pinned to CPUs (the service API has "
                "no cpuset), so the scan would share every core of the node; use target: "
                "container for a CPU-pinned deployment"
            )
        if self.privileged:
            raise ValueError("privileged: Swarm services cannot run privileged")
        if self.network_mode is NetworkMode.NONE:
            raise ValueError("network_mode: none is not available to Swarm services")
        if self.swarm.update_order is UpdateOrder.START_FIRST and not self.swarm.outputs_fenced:
            raise ValueError(
                "swarm.update_order: start-first runs the old and the new PLC at the same time, "
                "both driving the outputs; refused unless swarm.outputs_fenced: true says the "
                "app's outputs are ownership-protected (only the fence holder writes)"
            )
        return self

    @model_validator(mode="after")
    def _blue_green(self) -> Deployment:
        if self.strategy is not Strategy.BLUE_GREEN:
            return self
        if self.target is not Target.CONTAINER:
            raise ValueError("strategy: blue-green is for target: container (Swarm: update_order)")
        if self.network_mode is NetworkMode.NONE:
            raise ValueError("strategy: blue-green needs a network to reach the MQTT broker")
        if self.config_dir is None:
            raise ValueError(
                "config_dir: strategy blue-green needs a config folder holding the --mqtt "
                f"bridge config ({self.blue_green.mqtt_config}) and its access file"
            )
        return self

    @property
    def volume(self) -> str:
        return self.state_volume or f"vplc-{self.name}-state"


def _format(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not part of the deployment schema)"
    elif err["type"] == "missing":
        msg = "required key is missing"
    inp = err.get("input")
    shown = "" if isinstance(inp, dict | list) or err["type"] == "missing" else f" (got {inp!r})"
    return f"at {loc}: {msg}{shown}"


def load_deployment(path: Path) -> Deployment:
    """Read and validate a deployment file; InvalidInputError names the file and YAML path."""
    # Bounded like every other file people write: UTF-8, no FIFO or device, no YAML bomb, no
    # nesting deep enough to exhaust the stack, no NaN/inf where a number is expected.
    try:
        data = read_yaml_file(path)
    except YamlError as exc:
        raise InvalidInputError(f"{path}: cannot read the deployment file: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: invalid deployment: expected a mapping at the top level")
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_format(e) for e in exc.errors())
        raise InvalidInputError(f"{path}: invalid deployment: {problems}") from None
