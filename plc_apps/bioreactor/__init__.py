"""Bioreactor control app: temperature, pH and DO loops, alarms and an ISA-88 batch phase."""
