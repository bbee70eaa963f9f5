"""Touch-screen kiosks in public service halls.

Place in the architecture: the kiosk runtime (``contact kiosk run``) serves the UI
on the kiosk, drives its printer and card reader (``kiosk.hardware``), keeps
submissions in a local queue and forwards them to the central server's
``POST /api/v1/kiosk/submissions`` with the device token (``contact kiosk
register``; stored hashed in ``kiosk_devices``) and an ``Idempotency-Key``. The
central side turns a submission into a ticket with ``Channel.kiosk`` through
:mod:`contact.service`.
"""
