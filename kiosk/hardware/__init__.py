"""Kiosk hardware drivers: receipt printers (ESC/POS) and card / barcode readers."""
