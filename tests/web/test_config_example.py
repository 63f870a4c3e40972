"""runtime/web/examples/web.yaml lists every WebConfig key with its default."""

from __future__ import annotations

from pathlib import Path

import yaml

from runtime.web._config import WebConfig, load_web_config

EXAMPLE = Path(__file__).resolve().parents[2] / "runtime" / "web" / "examples" / "web.yaml"


def test_example_lists_every_key_with_its_default() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert set(data) == set(WebConfig.model_fields)
    default = WebConfig()
    for key, value in data.items():
        assert value == getattr(default, key), key
    assert load_web_config(EXAMPLE) == default
