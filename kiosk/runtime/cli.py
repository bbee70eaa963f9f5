"""``contact kiosk run``: start the kiosk's own server (screens, printer, reader, sync)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PRINTERS = ("usb", "serial", "network", "file", "dummy")
TOKEN_ENV = "CONTACT_KIOSK_DEVICE_TOKEN"  # noqa: S105 - the variable's name


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", required=True, help="the central server's URL")
    p.add_argument(
        "--device-token",
        default=None,
        help=f"from `contact kiosk register` (or the {TOKEN_ENV} environment variable, "
        "which keeps it out of the process list)",
    )
    p.add_argument("--printer", choices=PRINTERS, default="dummy")
    p.add_argument(
        "--printer-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="printer settings, e.g. devfile=/dev/usb/lp0, host=10.0.0.9, "
        "idVendor=0x0416 idProduct=0x5011",
    )
    p.add_argument("--reader", default=None, help="serial card reader / scanner, e.g. /dev/ttyUSB0")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--data-dir", type=Path, default=Path("var/kiosk"))
    p.add_argument(
        "--idle",
        type=int,
        default=90,
        help="seconds without a touch before the screen goes back to the start",
    )
    p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between heartbeats")
    p.add_argument(
        "--sync-pace",
        type=float,
        default=0.0,
        help="seconds between two forwarded submissions (slow uplinks)",
    )
    p.add_argument("--timezone", default=os.environ.get("CONTACT_TIMEZONE", "Asia/Shanghai"))
    p.add_argument(
        "--lang", choices=["zh-CN", "en"], default=os.environ.get("CONTACT_DEFAULT_LOCALE", "zh-CN")
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from kiosk.runtime.app import KioskConfig, create_kiosk_app

    token = args.device_token or os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"kiosk: --device-token (or {TOKEN_ENV}) is required", file=sys.stderr)
        return 2
    options: dict[str, str] = {}
    for item in args.printer_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"kiosk: --printer-option {item!r}: expected KEY=VALUE", file=sys.stderr)
            return 2
        options[key.strip()] = value.strip()
    if args.idle < 10:
        print("kiosk: --idle must be at least 10 seconds", file=sys.stderr)
        return 2
    try:
        tz = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        print(f"kiosk: --timezone {args.timezone!r} is not a time zone", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = KioskConfig(
        server=args.server,
        token=token,
        data_dir=args.data_dir,
        printer=args.printer,
        printer_options=options,
        reader=args.reader,
        idle_seconds=args.idle,
        heartbeat_seconds=args.heartbeat,
        sync_pace=args.sync_pace,
        tz=tz,
        default_locale=args.lang,
    )
    try:
        app = create_kiosk_app(config)
    except Exception as exc:  # a printer that cannot be opened, a bad option
        print(f"kiosk: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
