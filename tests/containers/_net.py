"""Where containers on Docker's default bridge reach this host, without trusting IPAM.Gateway.

On a dockerd's first boot ``docker network inspect bridge`` lists only the Subnet in
``IPAM.Config`` (the Gateway appears after a restart), so the address is read from the bridge
interface itself: its name is the network's ``com.docker.network.bridge.name`` option
(``docker0`` unless the daemon was configured otherwise), its IPv4 address comes from the kernel.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import subprocess

__all__ = ["bridge_gateway", "interface_ipv4"]

_SIOCGIFADDR = 0x8915  # linux/sockios.h: get an interface's (first) IPv4 address


def interface_ipv4(name: str) -> str:
    """The IPv4 address of network interface ``name`` (OSError when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
    return socket.inet_ntoa(packed[20:24])


def bridge_gateway(network: str = "bridge") -> str:
    """The host's address on a bridge network, from its interface (first boot safe)."""
    out = subprocess.run(
        ["docker", "network", "inspect", network, "--format", "{{json .Options}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"docker network inspect {network}: {out.stderr.strip()}")
    options = json.loads(out.stdout) or {}
    iface = options.get("com.docker.network.bridge.name") or "docker0"
    try:
        return interface_ipv4(iface)
    except OSError as exc:
        raise RuntimeError(
            f"network {network!r}: bridge interface {iface} has no IPv4 address ({exc})"
        ) from None
