"""What each layer exports is deliberate: a change to __all__ must change this test too."""

from __future__ import annotations

import hal
import runtime


def test_hal_exports() -> None:
    assert set(hal.__all__) == {
        "ChannelInfo", "DeclaredValue", "Direction", "Driver", "DriverError", "DriverFactory",
        "IecType", "MemoryDriver", "OnInvalid", "Point", "PointSpec", "ProcessImage", "Quality",
        "Scaling", "Value", "coerce", "coerce_exact", "default_value", "driver_kinds",
        "get_driver_factory", "register_driver",
    }  # fmt: skip


def test_hal_mqtt_exports() -> None:
    import hal.mqtt

    assert set(hal.mqtt.__all__) == {
        "BrokerOptions", "ConnectionState", "EventLog", "Inbound", "InsecureTransportError",
        "MqttError", "MqttSession", "SessionHandler", "StdlibLog", "TlsConfig", "Will",
        "check_transport", "connections", "load_broker_options", "read_password",
        "register_connection", "resolve_paths", "unregister_connection",
    }  # fmt: skip
    for name in hal.mqtt.__all__:
        assert getattr(hal.mqtt, name) is not None, name


def test_runtime_exports_resolve() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name
    assert {"Program", "FunctionBlock", "CycleContext", "ScanEngine", "load_app"} <= set(
        runtime.__all__
    )


def test_runtime_exports_the_app_author_api() -> None:
    declarations = {
        f"{kind}{role}"
        for kind in ("Bool", "Int", "Real", "String")
        for role in ("In", "Out", "Param", "Global")
    }
    views = {"InputPoint", "OutputPoint", "ParamValue", "GlobalValue", "GlobalVar"}
    assert declarations | views <= set(runtime.__all__)
    assert set(runtime.__all__) - declarations - views == {
        "AppConfigError", "AppContext", "AppManifest", "Clock", "CycleContext", "FunctionBlock",
        "LoadedApp", "ManifestError", "Parameter", "Program", "RealClock", "RuntimeState",
        "ScanEngine", "Task", "VirtualClock", "load_app", "load_manifest", "migration",
    }  # fmt: skip
