"""Admin: the catalogue (services and their form fields, departments, the districts'
address words), the business calendar, staff accounts, API clients and kiosk devices.

``/api/v1/admin/...``, admins only: the role is checked before anything is read. Every
change is a row in ``audit_log`` (``admin.<resource>.<verb>`` with what changed, never
a secret). Bad input answers 422 naming the field and writes nothing; an unknown code
404; a duplicate code or name 409. Catalogue and calendar changes reload this process's
cache at once; other processes pick them up within their cache window.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time
from itertools import pairwise
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contact import auth
from contact.api import ERRORS, service_read
from contact.deps import CurrentPrincipal, DbSession, RuntimeDep, client_of, forget_user
from contact.errors import Conflict, Forbidden, NotFound, field_error
from contact.fields import FieldProblem, check_definition
from contact.lifecycle import Actor
from contact.models import (
    ApiClient,
    AuditEntry,
    CalendarDay,
    CalendarDayKind,
    DeadlinePolicy,
    Department,
    DeptLevel,
    District,
    KioskDevice,
    Role,
    Service,
    TicketKind,
    User,
    WorkingHours,
)
from contact.principal import Principal
from contact.runtime import Runtime
from contact.schemas import ServiceRead, _In
from contact.security import hash_password

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], responses=ERRORS)


async def admin_only(principal: CurrentPrincipal) -> Principal:
    """The signed-in admin; anyone else is refused before a row is read."""
    if principal.actor is not Actor.admin:
        raise Forbidden("admins only")
    return principal


Admin = Annotated[Principal, Depends(admin_only)]

# ------------------------------------------------------------------ shared pieces

CODE = r"^[a-z0-9][a-z0-9-]*$"
Name = Annotated[str, Field(min_length=1, max_length=100)]
Keyword = Annotated[str, Field(min_length=1, max_length=50)]
Keywords = Annotated[list[Keyword], Field(max_length=200)]
LONG_TEXT = 80  # longer values are summarised in the audit log


async def _audit(
    session: AsyncSession, request: Request, me: Principal, action: str, **detail: Any
) -> None:
    await auth.audit(session, action, me.name, client_of(request), me.user_id, **detail)


async def _reload(rt: Runtime) -> None:
    """After a catalogue or calendar change: this process reloads now (the reload runs
    beside the response; a request never waits for it)."""
    rt.invalidate()
    await rt.catalogue()
    await rt.calendar()
    await rt.policies()


async def _commit(session: AsyncSession, conflict: str) -> None:
    """Commit; a unique constraint another request beat us to is a 409."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(conflict, code="duplicate") from None


def _keywords(words: list[str]) -> list[str]:
    """Trimmed, without blanks or repeats, in the order given."""
    return list(dict.fromkeys(w.strip() for w in words if w.strip()))


def _summary(key: str, value: Any) -> Any:
    if key == "fields":
        return [f["code"] for f in value]
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return value[:LONG_TEXT] + "…"
    if isinstance(value, list) and len(value) > 20:
        return [*value[:20], f"… {len(value)} in all"]
    return value


def _apply(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` on ``row``; what actually changed, summarised for the audit log."""
    changed: dict[str, Any] = {}
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed[key] = _summary(key, value.value if hasattr(value, "value") else value)
    return changed


def _no_nulls(body: BaseModel, *nullable: str) -> None:
    for key in body.model_fields_set:
        if getattr(body, key) is None and key not in nullable:
            raise field_error(key, "may not be empty")


async def _id_of(session: AsyncSession, model: Any, code: str | None, where: str) -> int | None:
    if code is None:
        return None
    found = (await session.execute(select(model.id).where(model.code == code))).scalar_one_or_none()
    if found is None:
        raise field_error(where, f"unknown code '{code}'")
    return int(found)


# ------------------------------------------------------------------ services


class ServiceCreate(_In):
    code: Annotated[str, Field(min_length=2, max_length=64, pattern=CODE)]
    name_zh: Annotated[str, Field(min_length=1, max_length=200)]
    name_en: Annotated[str, Field(min_length=1, max_length=200)]
    group_zh: Name
    group_en: Name
    description_zh: Annotated[str, Field(max_length=4000)] = ""
    description_en: Annotated[str, Field(max_length=4000)] = ""
    kind: TicketKind
    keywords: Keywords = Field(default_factory=list)
    department: Annotated[str, Field(max_length=32)]
    territorial: bool = False
    policy: Annotated[str, Field(max_length=32)]
    fields: list[Any] = Field(default_factory=list, description="checked by check_definition")
    active: bool = True


class ServiceUpdate(_In):
    """Only what is given changes. A service is never deleted: set ``active`` false."""

    name_zh: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    name_en: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    group_zh: Name | None = None
    group_en: Name | None = None
    description_zh: Annotated[str | None, Field(max_length=4000)] = None
    description_en: Annotated[str | None, Field(max_length=4000)] = None
    kind: TicketKind | None = None
    keywords: Keywords | None = None
    department: Annotated[str | None, Field(max_length=32)] = None
    territorial: bool | None = None
    policy: Annotated[str | None, Field(max_length=32)] = None
    fields: list[Any] | None = None
    active: bool | None = None


class AdminServiceRead(ServiceRead):
    """A service as the catalogue's readers see it, plus what only admins set."""

    policy: str
    active: bool


class PolicyRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    accept_minutes: int
    resolve_minutes: int
    working_time: bool


async def _services(session: AsyncSession, code: str | None = None) -> list[AdminServiceRead]:
    stmt = (
        select(Service, Department.code, DeadlinePolicy.code)
        .join(Department, Department.id == Service.default_department_id)
        .join(DeadlinePolicy, DeadlinePolicy.id == Service.deadline_policy_id)
        .order_by(Service.group_en, Service.code)
    )
    if code is not None:
        stmt = stmt.where(Service.code == code)
    return [
        AdminServiceRead(**service_read(s, dept).model_dump(), policy=policy, active=s.active)
        for s, dept, policy in (await session.execute(stmt)).all()
    ]


def _fields(definition: list[Any]) -> list[dict[str, Any]]:
    try:
        return check_definition(definition)
    except FieldProblem as problem:
        raise field_error(problem.where, problem.message) from None


async def _service_department(
    session: AsyncSession, code: str, territorial: bool, where: str = "department"
) -> int:
    dept = (
        await session.execute(select(Department).where(Department.code == code))
    ).scalar_one_or_none()
    if dept is None:
        raise field_error("department", f"unknown code '{code}'")
    if not dept.active:
        raise field_error("department", f"'{code}' is inactive")
    if territorial:
        offices = await session.scalar(
            select(func.count())
            .select_from(Department)
            .where(Department.parent_id == dept.id, Department.district_id.is_not(None))
        )
        if dept.level != DeptLevel.bureau or not offices:
            raise field_error(
                where,
                f"a territorial service goes to a bureau with district offices; '{code}' has none",
            )
    return dept.id


@router.get("/services", response_model=list[AdminServiceRead])
async def list_services(me: Admin, session: DbSession) -> list[AdminServiceRead]:
    """Every service, inactive ones too."""
    return await _services(session)


@router.get("/policies", response_model=list[PolicyRead])
async def list_policies(me: Admin, session: DbSession) -> list[PolicyRead]:
    """The deadline policies a service may follow."""
    rows = (await session.execute(select(DeadlinePolicy).order_by(DeadlinePolicy.id))).scalars()
    return [
        PolicyRead(
            code=p.code,
            name_zh=p.name_zh,
            name_en=p.name_en,
            accept_minutes=p.accept_minutes,
            resolve_minutes=p.resolve_minutes,
            working_time=p.working_time,
        )
        for p in rows
    ]


@router.post("/services", response_model=AdminServiceRead, status_code=201)
async def create_service(
    request: Request, rt: RuntimeDep, me: Admin, session: DbSession, body: ServiceCreate
) -> AdminServiceRead:
    fields = _fields(body.fields)
    if await session.scalar(select(Service.id).where(Service.code == body.code)):
        raise Conflict(f"service '{body.code}' exists", code="duplicate", fields={"code": "taken"})
    dept_id = await _service_department(session, body.department, body.territorial)
    policy_id = await _id_of(session, DeadlinePolicy, body.policy, "policy")
    assert policy_id is not None
    values = body.model_dump(exclude={"department", "policy", "fields", "keywords"})
    session.add(
        Service(
            **values,
            keywords=_keywords(body.keywords),
            fields=fields,
            default_department_id=dept_id,
            deadline_policy_id=policy_id,
        )
    )
    await _audit(
        session,
        request,
        me,
        "admin.service.create",
        service=body.code,
        department=body.department,
        policy=body.policy,
        fields=[f["code"] for f in fields],
        active=body.active,
    )
    await _commit(session, f"service '{body.code}' exists")
    await _reload(rt)
    return (await _services(session, body.code))[0]


@router.patch("/services/{code}", response_model=AdminServiceRead)
async def update_service(
    request: Request,
    rt: RuntimeDep,
    me: Admin,
    session: DbSession,
    code: str,
    body: ServiceUpdate,
) -> AdminServiceRead:
    _no_nulls(body)
    service = (
        await session.execute(select(Service).where(Service.code == code))
    ).scalar_one_or_none()
    if service is None:
        raise NotFound(f"no service '{code}'", code="service_not_found")
    given = body.model_dump(exclude_unset=True)
    values: dict[str, Any] = {
        k: v for k, v in given.items() if k not in ("department", "policy", "fields", "keywords")
    }
    if "fields" in given:
        values["fields"] = _fields(given["fields"])
    if "keywords" in given:
        values["keywords"] = _keywords(given["keywords"])
    territorial = given.get("territorial", service.territorial)
    if "department" in given or given.get("territorial"):
        dept_code = given.get("department") or (
            await session.scalar(
                select(Department.code).where(Department.id == service.default_department_id)
            )
        )
        assert dept_code is not None
        where = "department" if "department" in given else "territorial"
        values["default_department_id"] = await _service_department(
            session, dept_code, territorial, where
        )
    if "policy" in given:
        values["deadline_policy_id"] = await _id_of(session, DeadlinePolicy, body.policy, "policy")
    changed = _apply(service, values)
    for key, new in (("default_department_id", "department"), ("deadline_policy_id", "policy")):
        if key in changed:
            changed[new] = given[new]
            del changed[key]
    if changed:
        await _audit(session, request, me, "admin.service.update", service=code, changed=changed)
        await session.commit()
        await _reload(rt)
    return (await _services(session, code))[0]


# ------------------------------------------------------------------ departments


class DepartmentCreate(_In):
    code: Annotated[str, Field(min_length=2, max_length=32, pattern=CODE)]
    name_zh: Name
    name_en: Name
    level: DeptLevel
    parent: Annotated[str | None, Field(max_length=32)] = None
    district: Annotated[str | None, Field(max_length=32)] = None
    keywords: Keywords = Field(default_factory=list)
    phone: Annotated[str | None, Field(max_length=32, pattern=r"^[0-9+\-() ]*$")] = None
    active: bool = True


class DepartmentUpdate(_In):
    """Only what is given changes; ``parent``, ``district`` and ``phone`` may be null."""

    name_zh: Name | None = None
    name_en: Name | None = None
    level: DeptLevel | None = None
    parent: Annotated[str | None, Field(max_length=32)] = None
    district: Annotated[str | None, Field(max_length=32)] = None
    keywords: Keywords | None = None
    phone: Annotated[str | None, Field(max_length=32, pattern=r"^[0-9+\-() ]*$")] = None
    active: bool | None = None


class AdminDepartmentRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    level: str
    parent: str | None
    district: str | None
    keywords: list[str]
    phone: str | None
    active: bool


async def _departments(session: AsyncSession, code: str | None = None) -> list[AdminDepartmentRead]:
    rows = (await session.execute(select(Department).order_by(Department.code))).scalars().all()
    districts = dict((await session.execute(select(District.id, District.code))).all())
    codes = {d.id: d.code for d in rows}
    return [
        AdminDepartmentRead(
            code=d.code,
            name_zh=d.name_zh,
            name_en=d.name_en,
            level=d.level.value,
            parent=codes.get(d.parent_id) if d.parent_id else None,
            district=districts.get(d.district_id) if d.district_id else None,
            keywords=list(d.keywords or []),
            phone=d.phone,
            active=d.active,
        )
        for d in rows
        if code is None or d.code == code
    ]


# One level under the other: a bureau (市局), its district offices, their street offices.
PARENT_LEVEL = {DeptLevel.district: DeptLevel.bureau, DeptLevel.street: DeptLevel.district}


async def _placement(
    session: AsyncSession,
    level: DeptLevel,
    parent_code: str | None,
    district_code: str | None,
    keywords: list[str],
    active: bool = True,
) -> tuple[int | None, int | None]:
    """(parent id, district id) for a department at ``level``, or a 422 naming the field.

    Mirrors the database's rule (a bureau has no parent, every office has one) and the
    routing's: a district office is placed in a district, a street office sits under its
    district office (same district) and alone carries address words.
    """
    no_words = field_error("keywords", "only street offices carry address words")
    if level == DeptLevel.bureau:
        if parent_code:
            raise field_error("parent", "a bureau has no parent")
        if district_code:
            raise field_error("district", "a bureau serves the whole city")
        if keywords:
            raise no_words
        return None, None
    if not parent_code:
        raise field_error("parent", f"a {level.value} office needs its parent")
    parent = (
        await session.execute(select(Department).where(Department.code == parent_code))
    ).scalar_one_or_none()
    if parent is None:
        raise field_error("parent", f"unknown code '{parent_code}'")
    if parent.level != PARENT_LEVEL[level]:
        raise field_error("parent", f"a {level.value} office sits under a {PARENT_LEVEL[level]}")
    if active and not parent.active:
        raise field_error("parent", f"'{parent_code}' is inactive")
    if level == DeptLevel.street:
        if district_code is None:
            return parent.id, parent.district_id
        district_id = await _id_of(session, District, district_code, "district")
        if district_id != parent.district_id:
            raise field_error("district", "a street office lies in its district office's district")
        return parent.id, district_id
    if not district_code:
        raise field_error("district", "a district office needs its district")
    district_id = await _id_of(session, District, district_code, "district")
    if keywords:
        raise no_words
    return parent.id, district_id


async def _in_use(session: AsyncSession, dept: Department) -> list[str]:
    """What still depends on a department being active."""
    services = (
        await session.execute(
            select(Service.code).where(Service.default_department_id == dept.id, Service.active)
        )
    ).scalars()
    offices = (
        await session.execute(
            select(Department.code).where(Department.parent_id == dept.id, Department.active)
        )
    ).scalars()
    return [f"service {c}" for c in services] + [f"office {c}" for c in offices]


@router.get("/departments", response_model=list[AdminDepartmentRead])
async def list_departments(me: Admin, session: DbSession) -> list[AdminDepartmentRead]:
    """Every department, inactive ones too."""
    return await _departments(session)


@router.post("/departments", response_model=AdminDepartmentRead, status_code=201)
async def create_department(
    request: Request, rt: RuntimeDep, me: Admin, session: DbSession, body: DepartmentCreate
) -> AdminDepartmentRead:
    keywords = _keywords(body.keywords)
    parent_id, district_id = await _placement(
        session, body.level, body.parent, body.district, keywords, body.active
    )
    if await session.scalar(select(Department.id).where(Department.code == body.code)):
        raise Conflict(
            f"department '{body.code}' exists", code="duplicate", fields={"code": "taken"}
        )
    session.add(
        Department(
            code=body.code,
            name_zh=body.name_zh,
            name_en=body.name_en,
            level=body.level,
            parent_id=parent_id,
            district_id=district_id,
            keywords=keywords,
            phone=body.phone or None,
            active=body.active,
        )
    )
    await _audit(
        session,
        request,
        me,
        "admin.department.create",
        department=body.code,
        level=body.level.value,
        parent=body.parent,
        active=body.active,
    )
    await _commit(session, f"department '{body.code}' exists")
    await _reload(rt)
    return (await _departments(session, body.code))[0]


@router.patch("/departments/{code}", response_model=AdminDepartmentRead)
async def update_department(
    request: Request,
    rt: RuntimeDep,
    me: Admin,
    session: DbSession,
    code: str,
    body: DepartmentUpdate,
) -> AdminDepartmentRead:
    _no_nulls(body, "parent", "district", "phone")
    dept = (
        await session.execute(select(Department).where(Department.code == code))
    ).scalar_one_or_none()
    if dept is None:
        raise NotFound(f"no department '{code}'", code="department_not_found")
    given = body.model_dump(exclude_unset=True)
    (current,) = await _departments(session, code)
    level = body.level or dept.level
    if level != dept.level and await session.scalar(
        select(Department.id).where(Department.parent_id == dept.id).limit(1)
    ):
        raise field_error("level", "offices sit under this department: move them first")
    keywords = _keywords(given["keywords"]) if "keywords" in given else list(dept.keywords or [])
    parent = given.get("parent", current.parent)
    district = given.get("district", current.district)
    if level != dept.level:  # a new level: the old placement rarely fits, ask for it anew
        parent = given.get("parent")
        district = given.get("district")
    active = given.get("active", dept.active)
    parent_id, district_id = await _placement(session, level, parent, district, keywords, active)
    if given.get("active") is False and dept.active:
        used = await _in_use(session, dept)
        if used:
            raise Conflict(
                f"'{code}' is still in use: {', '.join(used[:10])}",
                code="in_use",
                fields={"active": "still in use"},
            )
    values: dict[str, Any] = {
        k: v for k, v in given.items() if k in ("name_zh", "name_en", "active", "level")
    }
    if "phone" in given:
        values["phone"] = given["phone"] or None
    values.update(keywords=keywords, parent_id=parent_id, district_id=district_id)
    changed = _apply(dept, values)
    if "parent_id" in changed:
        changed["parent"] = parent
        del changed["parent_id"]
    if "district_id" in changed:
        changed["district"] = await session.scalar(
            select(District.code).where(District.id == district_id)
        )
        del changed["district_id"]
    if changed:
        await _audit(
            session, request, me, "admin.department.update", department=code, changed=changed
        )
        await session.commit()
        await _reload(rt)
    return (await _departments(session, code))[0]


# ------------------------------------------------------------------ districts (routing)


class DistrictUpdate(_In):
    name_zh: Name | None = None
    name_en: Name | None = None
    keywords: Keywords | None = None


class AdminDistrictRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    keywords: list[str]


def _district_read(d: District) -> AdminDistrictRead:
    return AdminDistrictRead(
        code=d.code, name_zh=d.name_zh, name_en=d.name_en, keywords=list(d.keywords or [])
    )


@router.get("/districts", response_model=list[AdminDistrictRead])
async def list_districts(me: Admin, session: DbSession) -> list[AdminDistrictRead]:
    """The districts and the address words that place a ticket in each."""
    rows = (await session.execute(select(District).order_by(District.code))).scalars()
    return [_district_read(d) for d in rows]


@router.patch("/districts/{code}", response_model=AdminDistrictRead)
async def update_district(
    request: Request,
    rt: RuntimeDep,
    me: Admin,
    session: DbSession,
    code: str,
    body: DistrictUpdate,
) -> AdminDistrictRead:
    """Names and address words. A word places an address in one district only."""
    _no_nulls(body)
    rows = (await session.execute(select(District))).scalars().all()
    district = next((d for d in rows if d.code == code), None)
    if district is None:
        raise NotFound(f"no district '{code}'", code="district_not_found")
    values = body.model_dump(exclude_unset=True)
    if "keywords" in values:
        values["keywords"] = _keywords(values["keywords"])
        mine = {w.lower() for w in values["keywords"]}
        for other in rows:
            if other is district:
                continue
            taken = sorted(mine & {w.lower() for w in other.keywords or []})
            if taken:
                raise Conflict(
                    f"'{taken[0]}' already places addresses in district '{other.code}'",
                    code="duplicate",
                    fields={"keywords": f"'{taken[0]}' belongs to {other.code}"},
                )
    changed = _apply(district, values)
    if changed:
        await _audit(session, request, me, "admin.district.update", district=code, changed=changed)
        await session.commit()
        await _reload(rt)
    return _district_read(district)


# ------------------------------------------------------------------ business calendar


class Period(_In):
    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday")]
    start: time
    end: time


class WorkingHoursBody(_In):
    periods: Annotated[list[Period], Field(max_length=50)]


class DayBody(_In):
    kind: CalendarDayKind
    name_zh: Annotated[str, Field(max_length=100)] = ""
    name_en: Annotated[str, Field(max_length=100)] = ""


class DayRead(BaseModel):
    day: date
    kind: CalendarDayKind
    name_zh: str
    name_en: str


class CalendarRead(BaseModel):
    working_hours: list[Period]
    days: list[DayRead]


def _day_read(d: CalendarDay) -> DayRead:
    return DayRead(day=d.day, kind=d.kind, name_zh=d.name_zh, name_en=d.name_en)


async def _working_hours(session: AsyncSession) -> list[Period]:
    rows = (
        await session.execute(
            select(WorkingHours).order_by(WorkingHours.weekday, WorkingHours.start_time)
        )
    ).scalars()
    return [Period(weekday=r.weekday, start=r.start_time, end=r.end_time) for r in rows]


def _hhmm(t: time) -> str:
    return t.strftime("%H:%M")


@router.get("/calendar", response_model=CalendarRead)
async def calendar(
    me: Admin,
    session: DbSession,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> CalendarRead:
    """Working hours of an ordinary week, and the holidays and make-up working days
    (of ``year`` when given)."""
    stmt = select(CalendarDay).order_by(CalendarDay.day)
    if year is not None:
        stmt = stmt.where(
            CalendarDay.day >= date(year, 1, 1), CalendarDay.day <= date(year, 12, 31)
        )
    days = (await session.execute(stmt)).scalars()
    return CalendarRead(
        working_hours=await _working_hours(session), days=[_day_read(d) for d in days]
    )


@router.put("/calendar/hours", response_model=list[Period])
async def replace_working_hours(
    request: Request, rt: RuntimeDep, me: Admin, session: DbSession, body: WorkingHoursBody
) -> list[Period]:
    """Replace the working periods of the week (deadlines count working time in them)."""
    if not body.periods:
        raise field_error("periods", "at least one working period")
    by_day: dict[int, list[tuple[int, Period]]] = {}
    for i, p in enumerate(body.periods):
        if not p.start < p.end:
            raise field_error(f"periods[{i}].end", "must be after the start")
        by_day.setdefault(p.weekday, []).append((i, p))
    for periods in by_day.values():
        periods.sort(key=lambda ip: ip[1].start)
        for (_, a), (j, b) in pairwise(periods):
            if b.start < a.end:
                raise field_error(
                    f"periods[{j}].start",
                    f"overlaps {_hhmm(a.start)}–{_hhmm(a.end)} on the same weekday",
                )
    old = [f"{p.weekday} {_hhmm(p.start)}-{_hhmm(p.end)}" for p in await _working_hours(session)]
    for row in (await session.execute(select(WorkingHours))).scalars():
        await session.delete(row)
    await session.flush()
    ordered = sorted(body.periods, key=lambda p: (p.weekday, p.start))
    for p in ordered:
        session.add(WorkingHours(weekday=p.weekday, start_time=p.start, end_time=p.end))
    new = [f"{p.weekday} {_hhmm(p.start)}-{_hhmm(p.end)}" for p in ordered]
    await _audit(session, request, me, "admin.calendar.hours", old=old, new=new)
    await session.commit()
    await _reload(rt)
    return await _working_hours(session)


@router.put("/calendar/days/{day}", response_model=DayRead)
async def set_calendar_day(
    request: Request,
    response: Response,
    rt: RuntimeDep,
    me: Admin,
    session: DbSession,
    day: date,
    body: DayBody,
) -> DayRead:
    """Make ``day`` a public holiday or a make-up working day (调休): 201 when new."""
    row = await session.get(CalendarDay, day)
    created = row is None
    if row is None:
        row = CalendarDay(day=day, kind=body.kind, name_zh=body.name_zh, name_en=body.name_en)
        session.add(row)
        changed = body.model_dump(mode="json")
    else:
        changed = _apply(row, body.model_dump())
    if changed:
        action = "admin.calendar.day.create" if created else "admin.calendar.day.update"
        await _audit(session, request, me, action, day=day.isoformat(), changed=changed)
        await _commit(session, f"{day} was added meanwhile")
        await _reload(rt)
    response.status_code = 201 if created else 200
    return _day_read(row)


@router.delete("/calendar/days/{day}", status_code=204)
async def delete_calendar_day(
    request: Request, rt: RuntimeDep, me: Admin, session: DbSession, day: date
) -> Response:
    """Back to the weekly pattern for ``day``."""
    row = await session.get(CalendarDay, day)
    if row is None:
        raise NotFound(f"{day} is an ordinary day", code="day_not_found")
    await session.delete(row)
    await _audit(
        session,
        request,
        me,
        "admin.calendar.day.delete",
        day=day.isoformat(),
        kind=row.kind.value,
        name_zh=row.name_zh,
    )
    await session.commit()
    await _reload(rt)
    return Response(status_code=204)


# ------------------------------------------------------------------ users


Username = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Locale = Literal["zh-CN", "en"]


class AdminUserCreate(_In):
    username: Username
    display_name: Annotated[str, Field(max_length=100)] = ""
    role: Role
    department: Annotated[str | None, Field(max_length=32)] = None
    locale: Locale = "zh-CN"


class AdminUserUpdate(_In):
    """Only what is given changes. ``department`` goes with role ``department`` only."""

    display_name: Annotated[str | None, Field(max_length=100)] = None
    role: Role | None = None
    department: Annotated[str | None, Field(max_length=32)] = None
    locale: Locale | None = None
    active: bool | None = None


class AdminUserRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    department: str | None
    locale: str
    active: bool
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime


class IssuedPassword(BaseModel):
    """A new password: in this answer only, never again."""

    user: AdminUserRead
    password: str


async def _users(session: AsyncSession, username: str | None = None) -> list[AdminUserRead]:
    stmt = (
        select(User, Department.code)
        .outerjoin(Department, Department.id == User.department_id)
        .order_by(User.username)
    )
    if username is not None:
        stmt = stmt.where(User.username == username)
    return [
        AdminUserRead(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            role=u.role,
            department=code,
            locale=u.locale,
            active=u.active,
            failed_logins=u.failed_logins,
            locked_until=u.locked_until,
            created_at=u.created_at,
        )
        for u, code in (await session.execute(stmt)).all()
    ]


async def _user(session: AsyncSession, username: str) -> User:
    user = (
        await session.execute(select(User).where(User.username == username))
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user '{username}'", code="user_not_found")
    return user


async def _user_department(session: AsyncSession, role: Role, code: str | None) -> int | None:
    if role != Role.department:
        if code:
            raise field_error("department", "only department users are bound to a department")
        return None
    if not code:
        raise field_error("department", "required for the department role")
    dept = (
        await session.execute(select(Department).where(Department.code == code))
    ).scalar_one_or_none()
    if dept is None:
        raise field_error("department", f"unknown code '{code}'")
    if not dept.active:
        raise field_error("department", f"'{code}' is inactive")
    return dept.id


def new_password() -> str:
    """16 characters from a URL-safe alphabet (96 bits)."""
    return secrets.token_urlsafe(12)


@router.get("/users", response_model=list[AdminUserRead])
async def list_users(me: Admin, session: DbSession) -> list[AdminUserRead]:
    return await _users(session)


@router.post("/users", response_model=IssuedPassword, status_code=201)
async def create_user(
    request: Request, me: Admin, session: DbSession, body: AdminUserCreate
) -> IssuedPassword:
    """A new staff account with a generated password, shown in this answer only."""
    dept_id = await _user_department(session, body.role, body.department)
    if await session.scalar(select(User.id).where(User.username == body.username)):
        raise Conflict(
            f"user '{body.username}' exists", code="duplicate", fields={"username": "taken"}
        )
    password = new_password()
    session.add(
        User(
            username=body.username,
            display_name=body.display_name,
            password_hash=hash_password(password),
            role=body.role,
            department_id=dept_id,
            locale=body.locale,
        )
    )
    await _audit(
        session,
        request,
        me,
        "admin.user.create",
        target=body.username,
        role=body.role.value,
        department=body.department,
    )
    await _commit(session, f"user '{body.username}' exists")
    return IssuedPassword(user=(await _users(session, body.username))[0], password=password)


@router.patch("/users/{username}", response_model=AdminUserRead)
async def update_user(
    request: Request, me: Admin, session: DbSession, username: str, body: AdminUserUpdate
) -> AdminUserRead:
    """Name, role and department, language, active. Deactivating ends the user's
    sessions and tokens at once."""
    _no_nulls(body, "department")
    user = await _user(session, username)
    given = body.model_dump(exclude_unset=True)
    role = body.role or user.role
    if "department" in given:
        dept_code = given["department"]
    elif role == Role.department and user.department_id is not None:
        dept_code = await session.scalar(
            select(Department.code).where(Department.id == user.department_id)
        )
    else:
        dept_code = None
    dept_id = await _user_department(session, role, dept_code)
    # An admin cannot lock themselves out (another admin can, so one always remains).
    stays_admin = role == Role.admin and given.get("active", user.active)
    if user.id == me.user_id and not stays_admin:
        raise Conflict("you cannot deactivate or demote your own account", code="own_account")
    values = {k: v for k, v in given.items() if k in ("display_name", "locale", "active")}
    values.update(role=role, department_id=dept_id)
    changed = _apply(user, values)
    if "department_id" in changed:
        changed["department"] = dept_code
        del changed["department_id"]
    if changed.get("active") is False:
        await auth.revoke_user(session, user)
    if changed:
        await _audit(session, request, me, "admin.user.update", target=username, changed=changed)
        await session.commit()
        forget_user(user.id)
    return (await _users(session, username))[0]


@router.post("/users/{username}/reset-password", response_model=IssuedPassword)
async def reset_password(
    request: Request, me: Admin, session: DbSession, username: str
) -> IssuedPassword:
    """A new generated password (shown once); the old one, every session and every
    token stop working, and a lock is lifted."""
    user = await _user(session, username)
    password = new_password()
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    await auth.revoke_user(session, user)
    await _audit(session, request, me, "admin.user.reset_password", target=username)
    await session.commit()
    forget_user(user.id)
    return IssuedPassword(user=(await _users(session, username))[0], password=password)


@router.post("/users/{username}/unlock", response_model=AdminUserRead)
async def unlock_user(
    request: Request, me: Admin, session: DbSession, username: str
) -> AdminUserRead:
    """Lift a lock from too many wrong passwords before it runs out."""
    user = await _user(session, username)
    was_locked = user.locked_until
    user.failed_logins = 0
    user.locked_until = None
    await _audit(
        session,
        request,
        me,
        "admin.user.unlock",
        target=username,
        locked_until=was_locked.isoformat() if was_locked else None,
    )
    await session.commit()
    return (await _users(session, username))[0]


# ------------------------------------------------------------------ API clients, kiosks


class CredentialName(_In):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class KioskCreate(CredentialName):
    location: Annotated[str, Field(max_length=200)] = ""


class ApiClientRead(BaseModel):
    id: int
    name: str
    prefix: str
    active: bool
    created_at: datetime
    last_used_at: datetime | None


class IssuedApiKey(BaseModel):
    """The key is in this answer only; the server keeps its sha256."""

    client: ApiClientRead
    key: str


class KioskRead(BaseModel):
    id: int
    name: str
    prefix: str
    location: str
    active: bool
    created_at: datetime
    last_seen_at: datetime | None


class IssuedKioskToken(BaseModel):
    """The token is in this answer only; the server keeps its sha256."""

    kiosk: KioskRead
    token: str


def _client_read(c: ApiClient) -> ApiClientRead:
    return ApiClientRead(
        id=c.id,
        name=c.name,
        prefix=c.key_prefix,
        active=c.active,
        created_at=c.created_at,
        last_used_at=c.last_used_at,
    )


def _kiosk_read(k: KioskDevice) -> KioskRead:
    return KioskRead(
        id=k.id,
        name=k.name,
        prefix=k.token_prefix,
        location=k.location,
        active=k.active,
        created_at=k.created_at,
        last_seen_at=k.last_seen_at,
    )


@router.get("/api-clients", response_model=list[ApiClientRead])
async def list_api_clients(me: Admin, session: DbSession) -> list[ApiClientRead]:
    rows = (await session.execute(select(ApiClient).order_by(ApiClient.id))).scalars()
    return [_client_read(c) for c in rows]


@router.post("/api-clients", response_model=IssuedApiKey, status_code=201)
async def create_api_client(
    request: Request, me: Admin, session: DbSession, body: CredentialName
) -> IssuedApiKey:
    """A new Open311 / REST integration; its key is shown in this answer only."""
    if await session.scalar(select(ApiClient.id).where(ApiClient.name == body.name)):
        raise Conflict(f"'{body.name}' exists", code="duplicate", fields={"name": "taken"})
    row, key = auth.new_api_client(body.name)
    session.add(row)
    await _audit(
        session, request, me, "admin.apiclient.create", name=body.name, prefix=row.key_prefix
    )
    await _commit(session, f"'{body.name}' exists")
    return IssuedApiKey(client=_client_read(row), key=key)


@router.post("/api-clients/{client_id}/revoke", response_model=ApiClientRead)
async def revoke_api_client(
    request: Request, me: Admin, session: DbSession, client_id: int
) -> ApiClientRead:
    """The key stops working; the row stays for the tickets it handed in."""
    row = await session.get(ApiClient, client_id)
    if row is None:
        raise NotFound(f"no API client {client_id}", code="api_client_not_found")
    if row.active:
        row.active = False
        await _audit(
            session, request, me, "admin.apiclient.revoke", name=row.name, prefix=row.key_prefix
        )
        await session.commit()
    return _client_read(row)


@router.get("/kiosks", response_model=list[KioskRead])
async def list_kiosks(me: Admin, session: DbSession) -> list[KioskRead]:
    rows = (await session.execute(select(KioskDevice).order_by(KioskDevice.id))).scalars()
    return [_kiosk_read(k) for k in rows]


@router.post("/kiosks", response_model=IssuedKioskToken, status_code=201)
async def register_kiosk(
    request: Request, me: Admin, session: DbSession, body: KioskCreate
) -> IssuedKioskToken:
    """A new kiosk; its device token is shown in this answer only."""
    if await session.scalar(select(KioskDevice.id).where(KioskDevice.name == body.name)):
        raise Conflict(f"'{body.name}' exists", code="duplicate", fields={"name": "taken"})
    row, token = auth.new_kiosk_device(body.name, body.location)
    session.add(row)
    await _audit(
        session, request, me, "admin.kiosk.create", name=body.name, prefix=row.token_prefix
    )
    await _commit(session, f"'{body.name}' exists")
    return IssuedKioskToken(kiosk=_kiosk_read(row), token=token)


@router.post("/kiosks/{kiosk_id}/revoke", response_model=KioskRead)
async def revoke_kiosk(request: Request, me: Admin, session: DbSession, kiosk_id: int) -> KioskRead:
    """The device token stops working (a stolen or retired kiosk)."""
    row = await session.get(KioskDevice, kiosk_id)
    if row is None:
        raise NotFound(f"no kiosk {kiosk_id}", code="kiosk_not_found")
    if row.active:
        row.active = False
        await _audit(
            session, request, me, "admin.kiosk.revoke", name=row.name, prefix=row.token_prefix
        )
        await session.commit()
    return _kiosk_read(row)


# ------------------------------------------------------------------ audit


class AuditRead(BaseModel):
    id: int
    at: datetime
    action: str
    username: str
    ip: str
    detail: dict[str, Any]


@router.get("/audit", response_model=list[AuditRead])
async def audit_log(
    me: Admin,
    session: DbSession,
    action: Annotated[str | None, Query(max_length=32, description="prefix, e.g. admin.")] = None,
    before: Annotated[int | None, Query(ge=1, description="older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditRead]:
    """Sign-ins and admin changes, newest first."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditEntry.action.startswith(action, autoescape=True))
    if before:
        stmt = stmt.where(AuditEntry.id < before)
    return [
        AuditRead(id=a.id, at=a.at, action=a.action, username=a.username, ip=a.ip, detail=a.detail)
        for a in (await session.execute(stmt)).scalars()
    ]
