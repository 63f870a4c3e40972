"""The host address on Docker's bridge is found without IPAM.Gateway (absent on a first boot)."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import threading
from typing import Any

from containers._base import BASE_IMAGE, ensure_base_image
from tests.containers._net import bridge_gateway


def test_a_container_reaches_the_host_at_the_bridge_address(client: Any) -> None:
    ensure_base_image(client, progress=lambda line: None)
    host = bridge_gateway()
    inspect = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    subnet = ipaddress.ip_network(json.loads(inspect.stdout)[0]["Subnet"])
    assert ipaddress.ip_address(host) in subnet
    with socket.socket() as server:
        server.bind((host, 0))
        server.listen(1)
        server.settimeout(30)
        port = server.getsockname()[1]
        got: list[bytes] = []

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                got.append(conn.recv(16))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        code = f"import socket; socket.create_connection(({host!r}, {port}), 5).sendall(b'hello')"
        client.containers.run(BASE_IMAGE, ["python3", "-c", code], remove=True)
        thread.join(30)
    assert got == [b"hello"]
