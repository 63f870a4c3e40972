"""The bioreactor's programs, reused per reactor: ``entry: reactor:Loops``, ``args: {unit: R3}``.

plant10 does not copy the single-reactor logic: it runs the bioreactor app's own program
classes, which take a ``unit`` tag prefix. They are imported from the installed ``plc_apps``
package (an app-to-app import inside the plc_apps layer), so a fix to the bioreactor reaches
every reactor of the plant. The price: an online change of plant10 does not reload these
modules; change the bioreactor app and restart instead.
"""

from __future__ import annotations

from plc_apps.bioreactor.alarms import Alarms
from plc_apps.bioreactor.batch import Batch
from plc_apps.bioreactor.loops import Loops

__all__ = ["Alarms", "Batch", "Loops"]
