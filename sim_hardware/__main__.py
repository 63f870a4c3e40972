"""``python -m sim_hardware``: serve a simulated plant over MQTT, as ``vplc sim serve`` does."""

import sys

from sim_hardware.cli import main

sys.exit(main(prog="python -m sim_hardware"))
