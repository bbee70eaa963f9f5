"""The ``contact`` console script (SPEC §3)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from contact.settings import Settings, random_secret, settings_or_exit

DEMO_PASSWORD_FILE = Path("var/demo-password")


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.LOG_LEVEL.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = settings_or_exit()
    _logging(settings)
    workers = args.workers
    if workers > 1 and not settings.REDIS_URL:
        print(
            "contact: --workers > 1 needs CONTACT_REDIS_URL (events and jobs are per process "
            "without Redis); serving with 1 worker",
            file=sys.stderr,
        )
        workers = 1
    uvicorn.run(
        "contact.app:asgi",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_level=settings.LOG_LEVEL.lower(),
        proxy_headers=True,
        ws_ping_interval=20,
        ws_ping_timeout=20,
    )
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from contact.migrate import upgrade

    settings = settings_or_exit()
    upgrade(settings.DATABASE_URL, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def demo_password() -> tuple[str, bool]:
    """CONTACT_DEMO_PASSWORD, else the one generated for this checkout (kept under var/)."""
    env = os.environ.get("CONTACT_DEMO_PASSWORD")
    if env:
        return env, False
    if DEMO_PASSWORD_FILE.exists():
        return DEMO_PASSWORD_FILE.read_text().strip(), False
    pw = random_secret(9)
    DEMO_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_PASSWORD_FILE.touch(mode=0o600)
    DEMO_PASSWORD_FILE.write_text(pw + "\n")
    return pw, True


def cmd_seed_demo(args: argparse.Namespace) -> int:
    from contact.db import Database
    from contact.seed.demo import is_empty, seed_demo

    settings = settings_or_exit()

    async def run() -> int:
        db = Database(settings.DATABASE_URL)
        try:
            if not await is_empty(db):
                if args.if_empty:
                    _print_logins(db_users=None)
                    return 0
                print("contact: the database already holds a city; not seeding", file=sys.stderr)
                return 1
            password, _ = demo_password()
            report = await seed_demo(db, password=password, tickets=args.tickets)
            print(
                f"seeded the demo city: {report.departments} departments, {report.services} "
                f"services, {report.tickets} tickets"
            )
            _print_logins(db_users=report.usernames)
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def _print_logins(db_users: list[str] | None) -> None:
    password, _ = demo_password()
    print(f"demo logins (password for all: {password}):")
    print("  admin, supervisor1, agent1, and <department code>-clerk (e.g. cgj-clerk)")
    if db_users:
        clerks = [u for u in db_users if u.endswith("-clerk")]
        print(f"  {len(clerks)} department clerks: " + ", ".join(clerks[:6]) + ", ...")


def cmd_user_add(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from contact.db import Database
    from contact.models import Department, Role, User
    from contact.security import hash_password

    settings = settings_or_exit()
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 10:
        print(
            "contact: the password (read from stdin) needs at least 10 characters", file=sys.stderr
        )
        return 2
    role = Role(args.role)
    if (role == Role.department) != bool(args.department):
        print(
            "contact: --department is required for, and only for, role department", file=sys.stderr
        )
        return 2

    async def run() -> int:
        db = Database(settings.DATABASE_URL)
        try:
            async with db.session() as s:
                dept_id = None
                if args.department:
                    dept_id = (
                        await s.execute(
                            select(Department.id).where(Department.code == args.department)
                        )
                    ).scalar_one_or_none()
                    if dept_id is None:
                        print(f"contact: unknown department {args.department}", file=sys.stderr)
                        return 2
                if (await s.execute(select(User.id).where(User.username == args.username))).first():
                    print(f"contact: user {args.username} exists", file=sys.stderr)
                    return 1
                s.add(
                    User(
                        username=args.username,
                        password_hash=hash_password(password),
                        role=role,
                        department_id=dept_id,
                    )
                )
                await s.commit()
            print(f"user {args.username} ({role.value}) added")
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def _add_secret(kind: str, name: str) -> int:
    from contact.auth import new_api_client, new_kiosk_device
    from contact.db import Database

    settings = settings_or_exit()

    async def run() -> int:
        db = Database(settings.DATABASE_URL)
        try:
            async with db.session() as s:
                row, secret = new_api_client(name) if kind == "api" else new_kiosk_device(name)
                s.add(row)
                try:
                    await s.commit()
                except Exception:
                    print(f"contact: the name {name!r} is taken", file=sys.stderr)
                    return 1
            what = "API key" if kind == "api" else "device token"
            print(f"{what} for {name} (shown once, stored hashed):")
            print(secret)
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_worker(args: argparse.Namespace) -> int:
    from contact.worker import run_worker

    return run_worker(settings_or_exit(), burst=args.burst)


def cmd_ivr_simulate(args: argparse.Namespace) -> int:
    from ivr.simulate import simulate

    settings = settings_or_exit()
    # What the caller hears goes to stdout; only warnings and errors to stderr.
    level = logging.getLevelName(settings.LOG_LEVEL.upper())
    logging.basicConfig(
        level=max(logging.WARNING, level if isinstance(level, int) else logging.INFO),
        format="%(levelname)s %(name)s %(message)s",
    )
    return simulate(settings, caller=args.caller, lang=args.lang)


def cmd_routing_evaluate(args: argparse.Namespace) -> int:
    from contact import learning

    try:
        texts, labels = learning.read_csv(args.csv)
    except (OSError, ValueError) as exc:
        print(f"routing: {exc}", file=sys.stderr)
        return 2
    if not 2 <= args.folds <= 20:
        print("routing: --folds must be from 2 to 20", file=sys.stderr)
        return 2
    print(f"{len(texts)} rows, {len(set(labels))} labels, {args.folds} folds, seed {args.seed}")
    named = None if args.no_label_names else learning.name_descriptions(labels)
    if named:
        print("the model also reads each label's name as one example of it")
    learning.report(
        learning.cross_validate(texts, labels, args.folds, args.seed, descriptions=named)
    )
    return 0


def cmd_routing_train(args: argparse.Namespace) -> int:
    """From resolved tickets (no --csv) or a CSV: measured on a held-out share, trained
    on everything, stored as a new model version (or, with --out, as a file)."""
    import time as _time

    from contact import learning, model_router

    if args.csv is None and args.out is not None:
        print("routing: --out needs --csv", file=sys.stderr)
        return 2
    if args.csv is not None:
        try:
            texts, labels = learning.read_csv(args.csv)
        except (OSError, ValueError) as exc:
            print(f"routing: {exc}", file=sys.stderr)
            return 2
    if args.out is not None:
        started = _time.monotonic()
        model = learning.TextModel.train(
            texts, labels, say=print, descriptions=learning.name_descriptions(labels)
        )
        took = _time.monotonic() - started
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"routing-{_time.strftime('%Y%m%d-%H%M%S')}.npz"
        path.write_bytes(model.to_bytes())
        print(f"{len(texts)} rows, {len(model.labels)} labels, trained in {took:.1f} s")
        print(path)
        return 0

    from contact.app import build_runtime

    settings = settings_or_exit()

    async def run() -> int:
        rt = build_runtime(settings, pool_size=2)
        try:
            if args.csv is None:
                outcome = await model_router.train_from_tickets(rt, say=print)
                if outcome.version is None:
                    print(f"routing: {outcome.message}", file=sys.stderr)
                    return 1
            else:
                catalogue = await rt.catalogue()
                unknown = sorted(set(labels) - set(catalogue.departments))
                if unknown:
                    print(
                        "routing: labels must be department codes to route with; unknown: "
                        + ", ".join(unknown[:10]),
                        file=sys.stderr,
                    )
                    return 2
                started = _time.monotonic()
                model, metrics = await asyncio.to_thread(
                    model_router.evaluate_and_train,
                    texts,
                    labels,
                    print,
                    None,
                    settings.ROUTING_AUTO_DISPATCH,
                    model_router.descriptions(catalogue),
                )
                outcome = await model_router.store(
                    rt,
                    model,
                    metrics,
                    source=args.csv.name,
                    rows=len(texts),
                    train_seconds=_time.monotonic() - started,
                )
            print(outcome.message)
            m = outcome.metrics
            for name in ("baseline_majority", "baseline_keywords"):
                print(
                    f"{name.replace('_', ' ')}: accuracy={m[name]['accuracy']:.3f} "
                    f"macro_f1={m[name]['macro_f1']:.3f}"
                )
            learning.report_by_confidence(
                [(a["threshold"], a["share"], a["accuracy"]) for a in m.get("auto_dispatch", [])]
            )
            print(f"accuracy={m['accuracy']:.3f} macro_f1={m['macro_f1']:.3f}")
            return 0
        finally:
            await rt.close()

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="contact", description="Citizen contact center")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the web app")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="rq worker with the scheduler (needs CONTACT_REDIS_URL)")
    w.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    w.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="run Alembic migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    sd = sub.add_parser("seed-demo", help="the demo city")
    sd.add_argument("--if-empty", action="store_true", help="do nothing if a city is there")
    sd.add_argument("--tickets", type=int, default=300)
    sd.set_defaults(func=cmd_seed_demo)

    u = sub.add_parser("user", help="users")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = usub.add_parser("add", help="add a user (password from stdin)")
    ua.add_argument("--username", required=True)
    ua.add_argument("--role", required=True, choices=["agent", "department", "supervisor", "admin"])
    ua.add_argument("--department")
    ua.set_defaults(func=cmd_user_add)

    ac = sub.add_parser("apiclient", help="Open311 / REST API clients")
    acsub = ac.add_subparsers(dest="apiclient_command", required=True)
    aca = acsub.add_parser("add", help="print a new API key once")
    aca.add_argument("--name", required=True)
    aca.set_defaults(func=lambda a: _add_secret("api", a.name))

    k = sub.add_parser("kiosk", help="kiosks")
    ksub = k.add_subparsers(dest="kiosk_command", required=True)
    kr = ksub.add_parser("register", help="print a new device token once")
    kr.add_argument("--name", required=True)
    kr.set_defaults(func=lambda a: _add_secret("kiosk", a.name))
    from kiosk.runtime import cli as kiosk_cli

    krun = ksub.add_parser("run", help="the kiosk's own server: screens, printer, offline queue")
    kiosk_cli.add_arguments(krun)
    krun.set_defaults(func=kiosk_cli.run)

    ro = sub.add_parser("routing", help="the learning router")
    rosub = ro.add_subparsers(dest="routing_command", required=True)
    rev = rosub.add_parser(
        "evaluate",
        help="accuracy and macro-F1 on fixed-seed folds of a CSV (text,label), beside a "
        "majority-class and a keyword-rule baseline",
    )
    rev.add_argument("--csv", type=Path, required=True)
    rev.add_argument("--folds", type=int, default=5)
    rev.add_argument("--seed", type=int, default=42)
    rev.add_argument(
        "--no-label-names",
        action="store_true",
        help="learn from the rows only, not also from each label's name",
    )
    rev.set_defaults(func=cmd_routing_evaluate)
    rtr = rosub.add_parser(
        "train",
        help="train a new model version from resolved tickets, or from a CSV (text,label "
        "with department codes); with --out, write the model to a file instead",
    )
    rtr.add_argument("--csv", type=Path)
    rtr.add_argument("--out", type=Path)
    rtr.set_defaults(func=cmd_routing_train)

    iv = sub.add_parser("ivr", help="the voice IVR")
    ivsub = iv.add_subparsers(dest="ivr_command", required=True)
    ivs = ivsub.add_parser(
        "simulate",
        help="a phone call in the terminal: prints what the caller hears, reads keys and "
        "speech as typed lines",
    )
    ivs.add_argument("--from", dest="caller", default="+8613800000000", help="the caller's number")
    ivs.add_argument(
        "--lang",
        choices=["zh-CN", "en"],
        default=None,
        help="language of the simulator's own messages (default: CONTACT_DEFAULT_LOCALE)",
    )
    ivs.set_defaults(func=cmd_ivr_simulate)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
