"""Kiosk hardware drivers: receipt printers (ESC/POS) and card / barcode readers.

- :mod:`kiosk.hardware.receipt`: the receipt a citizen takes home after submitting a
  request at the kiosk, and printed service guides, as ESC/POS bytes (Chinese in
  GB18030 character mode, English in PC437, native QR code to the tracking page).
- :mod:`kiosk.hardware.printer`: the printer itself — USB, serial, network, device
  file or in memory — with its real-time status (online, paper) for the screen and the
  heartbeat; ``make_printer(kind, options)`` builds one from the kiosk's configuration.
- :mod:`kiosk.hardware.escpos_text`: reads the bytes back as text, QR payloads and cut,
  for tests and for looking at a ``file`` printer's output.
- :mod:`kiosk.hardware.reader`: serial scanners and card readers, and the classification
  of a scanned code (tracking reference or card number; card numbers never in clear).

The submodules are imported separately, so a kiosk without a printer does not load
python-escpos.
"""
