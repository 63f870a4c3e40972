"""Malformed frames over raw sockets: answered with exception codes or dropped, never a crash,
and the scan keeps its pace meanwhile."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Callable

from pymodbus.client import ModbusTcpClient

from runtime.host import Runtime
from tests.modbus.conftest import Served


def raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    return s


def ask(port: int, frame: bytes) -> bytes:
    """Send one frame; whatever comes back before the server closes or 0.5 s pass."""
    with raw(port) as s:
        s.sendall(frame)
        s.settimeout(0.5)
        try:
            return s.recv(300)
        except TimeoutError:
            return b"(silence)"


def mbap(pdu: bytes, *, tid: int = 7, pid: int = 0, length: int | None = None) -> bytes:
    n = len(pdu) + 1 if length is None else length
    return struct.pack(">HHHB", tid, pid, n, 1) + pdu


def counted(runtime: Runtime, what: str) -> int:
    """A count of the server process, as it last reported it (every 0.5 s)."""
    return int(runtime.modbus.statistics().get(what, 0))


def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def still_serving(port: int) -> bool:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    try:
        assert client.connect()
        rr = client.read_input_registers(0, count=2, device_id=1)
        return not rr.isError()
    finally:
        client.close()


def test_exception_codes_for_well_framed_bad_requests(served: Served) -> None:
    runtime, _ = served()
    port = runtime.modbus.config.port
    # unknown function code 0x2B (43) and 0x41: illegal function, same transaction id
    assert ask(port, mbap(b"\x41\x00\x00")) == mbap(b"\xc1\x01", length=3)
    assert ask(port, mbap(b"\x2b\x0e\x01\x00")) == mbap(b"\xab\x01", length=3)
    # read with quantity 0 / 126 registers: illegal data value
    assert ask(port, mbap(b"\x04\x00\x00\x00\x00")) == mbap(b"\x84\x03", length=3)
    assert ask(port, mbap(b"\x03\x00\x00\x00\x7e")) == mbap(b"\x83\x03", length=3)
    # a read PDU one byte short, FC16 whose byte count disagrees with its quantity
    assert ask(port, mbap(b"\x03\x00\x00\x00")) == mbap(b"\x83\x03", length=3)
    assert ask(port, mbap(b"\x10\x00\x0a\x00\x02\x03\x00\x00\x00")) == mbap(b"\x90\x03", length=3)
    # a coil value other than 0xFF00/0x0000
    assert ask(port, mbap(b"\x05\x00\x00\x12\x34")) == mbap(b"\x85\x03", length=3)
    # reading past 65535
    assert ask(port, mbap(b"\x04\xff\xff\x00\x02")) == mbap(b"\x84\x02", length=3)
    assert still_serving(port)


def test_untrustworthy_headers_are_dropped(served: Served) -> None:
    runtime, _ = served()
    port = runtime.modbus.config.port
    before = counted(runtime, "malformed")
    assert ask(port, mbap(b"\x03\x00\x00\x00\x01", pid=1)) == b""  # not Modbus: closed
    assert ask(port, mbap(b"\x03", length=1)) == b""  # length below 2
    assert ask(port, mbap(b"\x03\x00\x00\x00\x01", length=300)) == b""  # beyond 254
    wait_for(lambda: counted(runtime, "malformed") == before + 3)
    # truncated: half a header, or a header promising more than is sent, then a hang-up
    for frame in (b"\x00\x01\x00", mbap(b"\x03\x00", length=6)):
        with raw(port) as s:
            s.sendall(frame)
    # random junk, then a real request on the same socket is never reached: closed, not hung
    assert ask(port, bytes(range(256)) * 4) in (b"", b"(silence)")
    assert still_serving(port)


def test_a_flood_of_connections_is_bounded_and_the_scan_unharmed(served: Served) -> None:
    runtime, _ = served(max_connections=8)
    port = runtime.modbus.config.port
    engine = runtime.engine
    cycles0 = engine.statistics()["tasks"]["fast"]["cycles"]
    t0 = time.monotonic()
    socks = []
    for _ in range(40):
        with contextlib.suppress(OSError):
            socks.append(raw(port))
    for s in socks:  # every open one sends a header and goes silent, or junk
        with contextlib.suppress(OSError):
            s.sendall(b"\x00\x01\x00\x00\x00\x06\x01")
    wait_for(lambda: counted(runtime, "refused_connections") >= 40 - 8)
    for s in socks:
        s.close()
    time.sleep(0.2)
    assert still_serving(port)
    stats = engine.statistics()["tasks"]["fast"]
    elapsed = time.monotonic() - t0
    # the 10 ms task kept running through it (no stall of the scan thread)
    assert stats["cycles"] - cycles0 >= 0.8 * elapsed / 0.01, (stats, elapsed)


def test_the_server_is_a_process_of_its_own_restarted_when_killed(served: Served) -> None:
    runtime, _ = served()
    server = runtime.modbus
    pid = server.child_pid
    assert pid is not None and pid != os.getpid()
    cycles0 = runtime.engine.statistics()["tasks"]["fast"]["cycles"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: server.child_pid != pid and server.connected.is_set(), timeout=15)
    assert server.statistics()["process"]["restarts"] == 1
    wait_for(lambda: still_serving(server.config.port))
    assert runtime.engine.statistics()["tasks"]["fast"]["cycles"] > cycles0  # scan went on
