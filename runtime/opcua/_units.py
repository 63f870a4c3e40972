"""Engineering units as OPC UA EUInformation: the manifest's unit text → UNECE Rec. 20 code."""

from __future__ import annotations

from asyncua import ua

__all__ = ["UNECE_NAMESPACE", "eu_information", "unit_id"]

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"

# unit as manifests write it → (UNECE common code, display name, description). The codes
# are those of UNECE Recommendation 20, as OPC 10000-8 §5.6.3 asks for EngineeringUnits.
_UNECE: dict[str, tuple[str, str, str]] = {
    "degC": ("CEL", "°C", "degree Celsius"),
    "°C": ("CEL", "°C", "degree Celsius"),
    "K": ("KEL", "K", "kelvin"),
    "pH": ("Q30", "pH", "pH (potential of hydrogen)"),
    "%": ("P1", "%", "percent"),
    "L": ("LTR", "l", "litre"),
    "mL": ("MLT", "ml", "millilitre"),
    "m3": ("MTQ", "m³", "cubic metre"),
    "g/L": ("GL", "g/l", "gram per litre"),
    "mg/L": ("M1", "mg/l", "milligram per litre"),
    "rpm": ("RPM", "r/min", "revolutions per minute"),
    "L/h": ("E32", "l/h", "litre per hour"),
    "L/min": ("L2", "l/min", "litre per minute"),
    "mL/min": ("41", "ml/min", "millilitre per minute"),
    "m3/h": ("MQH", "m³/h", "cubic metre per hour"),
    "s": ("SEC", "s", "second"),
    "min": ("MIN", "min", "minute"),
    "h": ("HUR", "h", "hour"),
    "bar": ("BAR", "bar", "bar"),
    "mbar": ("MBR", "mbar", "millibar"),
    "Pa": ("PAL", "Pa", "pascal"),
    "kPa": ("KPA", "kPa", "kilopascal"),
    "kg": ("KGM", "kg", "kilogram"),
    "g": ("GRM", "g", "gram"),
    "W": ("WTT", "W", "watt"),
    "kW": ("KWT", "kW", "kilowatt"),
    "V": ("VLT", "V", "volt"),
    "mV": ("2Z", "mV", "millivolt"),
    "A": ("AMP", "A", "ampere"),
    "mA": ("4K", "mA", "milliampere"),
    "Hz": ("HTZ", "Hz", "hertz"),
    "m": ("MTR", "m", "metre"),
    "mm": ("MMT", "mm", "millimetre"),
}


def unit_id(code: str) -> int:
    """OPC 10000-8 §5.6.3: the code's ASCII characters packed big-endian into an Int32."""
    value = 0
    for char in code:
        value = (value << 8) | ord(char)
    return value


def eu_information(unit: str) -> ua.EUInformation:
    """The EUInformation of a manifest unit; an unknown unit keeps its text, UnitId -1."""
    known = _UNECE.get(unit)
    if known is None:
        return ua.EUInformation(
            NamespaceUri=UNECE_NAMESPACE,
            UnitId=-1,
            DisplayName=ua.LocalizedText(unit),
            Description=ua.LocalizedText(unit),
        )
    code, display, description = known
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=unit_id(code),
        DisplayName=ua.LocalizedText(display),
        Description=ua.LocalizedText(description),
    )
