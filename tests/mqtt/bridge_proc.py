"""Run an app with an MQTT bridge in a child process, so a test can kill it without DISCONNECT."""

from __future__ import annotations

import sys
import time

from runtime import ScanEngine, load_app
from runtime.core._logging import configure_logging
from runtime.mqtt import MqttBridge, MqttConfig, ProcessBridge


def main() -> None:
    configure_logging("console")  # to stderr: stdout carries the 'ready' handshake
    app_dir, port, site, node = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    engine = ScanEngine(load_app(app_dir))
    engine.start()
    engine.start_thread()
    config = MqttConfig(port=port, site=site, node=node, keepalive_s=5)
    # An optional 5th argument "process" runs the bridge in a child process.
    process = sys.argv[5:] == ["process"]
    bridge = ProcessBridge(engine, config) if process else MqttBridge(engine, config)
    bridge.start()
    if not bridge.connected.wait(20):
        print("not connected", flush=True)
        sys.exit(1)
    print("ready", getattr(bridge, "child_pid", ""), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
