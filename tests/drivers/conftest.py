"""Fixtures for driver tests: the real Mosquitto brokers of tests/mqtt and a fake MQTT device."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.drivers.device import Device
from tests.mqtt.broker import Broker
from tests.mqtt.conftest import broker, mosquitto, own_broker

__all__ = ["broker", "device", "mosquitto", "own_broker"]  # reused fixtures


@pytest.fixture
def device(broker: Broker) -> Iterator[Device]:
    dev = Device(broker.port, "test/dev")
    yield dev
    dev.close()
