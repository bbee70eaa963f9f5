"""Statistics for supervisors and departments: the report (figures, rankings,
breakdowns, daily volume, hot spots) as JSON, and the same tables as CSV or XLSX.

Supervisors and admins see every ticket; a department user sees its own department and
the offices under it, and nothing else; agents get 403.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from contact import export, reports
from contact.deps import CurrentPrincipal, DbSession, RuntimeDep
from contact.errors import ErrorBody, Forbidden
from contact.events import HotspotFacts
from contact.lifecycle import Actor
from contact.models import HotspotAlert, utcnow
from contact.principal import Principal

router = APIRouter(
    prefix="/api/v1/stats",
    tags=["statistics"],
    responses={
        code: {"model": ErrorBody, "description": desc}
        for code, desc in (
            (401, "Not signed in"),
            (403, "Agents do not read statistics"),
            (404, "The department is outside the caller's scope"),
            (422, "Invalid filter: `fields` names each one"),
        )
    },
)

TICKET_ROWS_DEFAULT = 10_000
TICKET_ROWS_MAX = 100_000
EXCERPT = 200
STATS_ROLES = frozenset({Actor.supervisor, Actor.admin, Actor.department})
TableName = Literal[
    "all", "summary", "departments", "services", "channels", "districts", "series", "hotspots",
    "tickets",
]  # fmt: skip


def require_stats_reader(principal: Principal) -> None:
    if principal.actor not in STATS_ROLES:
        raise Forbidden("statistics are for supervisors, admins and departments")


# ------------------------------------------------------------------ query parameters


@dataclass(frozen=True)
class ReportQuery:
    from_: datetime | None
    to: datetime | None
    department: str | None
    service: str | None
    channel: str | None
    district: str | None
    day: date | None
    baseline_days: int


def report_query(
    from_: Annotated[
        datetime | None,
        Query(alias="from", description="Start of the period, with offset (default: to − 30 days)"),
    ] = None,
    to: Annotated[
        datetime | None, Query(description="End of the period, with offset (default: now)")
    ] = None,
    department: Annotated[
        str | None,
        Query(max_length=32, description="Department code; includes the offices under it"),
    ] = None,
    service: Annotated[str | None, Query(max_length=64, description="Service code")] = None,
    channel: Annotated[
        str | None, Query(max_length=16, description="sms, voice, web, kiosk, open311, agent")
    ] = None,
    district: Annotated[str | None, Query(max_length=32, description="District code")] = None,
    day: Annotated[
        date | None,
        Query(description="Hot spots on this local day (default: the period's last day)"),
    ] = None,
    baseline_days: Annotated[
        int, Query(ge=7, le=90, description="Hot spots: days of trailing baseline")
    ] = reports.BASELINE_DAYS,
) -> ReportQuery:
    return ReportQuery(from_, to, department, service, channel, district, day, baseline_days)


ReportParams = Annotated[ReportQuery, Depends(report_query)]


async def _build(
    rt: RuntimeDep, session: DbSession, principal: Principal, q: ReportQuery
) -> reports.Report:
    require_stats_reader(principal)
    catalogue = await rt.catalogue()
    filters = reports.make_filters(
        catalogue,
        principal,
        q.from_,
        q.to,
        department=q.department,
        service=q.service,
        channel=q.channel,
        district=q.district,
    )
    return await reports.report(
        session,
        principal,
        filters,
        catalogue,
        rt.settings.tz,
        hotspot_day=q.day,
        baseline_days=q.baseline_days,
        working_day=(await rt.calendar()).is_working_day,
    )


# ------------------------------------------------------------------ JSON


class Period(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    timezone: str


class FiltersRead(BaseModel):
    department: str | None
    service: str | None
    channel: str | None
    district: str | None


class FiguresRead(BaseModel):
    tickets: int
    dispatched: int
    accepted_in_time: int
    resolved: int
    resolved_in_time: int
    ratings: int
    satisfied: int
    solved_answers: int
    solved: int
    reopened: int
    response_rate: float | None
    on_time_rate: float | None
    satisfaction_rate: float | None
    resolution_rate: float | None
    reopen_rate: float | None
    avg_handling_hours: float | None


class StatsSummaryRead(FiguresRead):
    by_status: dict[str, int]
    by_channel: dict[str, int]


class BreakdownRow(FiguresRead):
    code: str | None
    name_zh: str
    name_en: str


class DepartmentRow(BreakdownRow):
    rank: int | None
    score: float | None
    level: str | None
    parent: str | None


class Breakdowns(BaseModel):
    departments: list[DepartmentRow]
    services: list[BreakdownRow]
    channels: list[BreakdownRow]
    districts: list[BreakdownRow]


class SeriesPoint(BaseModel):
    day: date
    tickets: int


class RankingRead(BaseModel):
    method: str
    weights: dict[str, float]


class ReportRead(BaseModel):
    period: Period
    filters: FiltersRead
    summary: StatsSummaryRead
    breakdowns: Breakdowns
    ranking: RankingRead
    series: list[SeriesPoint]
    # The scan's own dataclasses (pydantic validates and documents them as they are).
    hotspots: reports.HotspotScan


FIGURE_FIELDS = tuple(FiguresRead.model_fields)


def _figures(f: reports.Figures | reports.Summary) -> dict[str, Any]:
    return {name: getattr(f, name) for name in FIGURE_FIELDS}


def _row(r: reports.Row) -> dict[str, Any]:
    return {"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en, **_figures(r.figures)}


def _department(r: reports.Row) -> DepartmentRow:
    return DepartmentRow(**_row(r), rank=r.rank, score=r.score, level=r.level, parent=r.parent)


def report_read(rep: reports.Report, timezone: str) -> ReportRead:
    f, s = rep.filters, rep.summary
    return ReportRead(
        period=Period(from_=f.start, to=f.end, timezone=timezone),
        filters=FiltersRead(
            department=f.department,
            service=f.service,
            channel=f.channel.value if f.channel else None,
            district=f.district,
        ),
        summary=StatsSummaryRead(**_figures(s), by_status=s.by_status, by_channel=s.by_channel),
        breakdowns=Breakdowns(
            departments=[_department(r) for r in rep.departments],
            services=[BreakdownRow(**_row(r)) for r in rep.services],
            channels=[BreakdownRow(**_row(r)) for r in rep.channels],
            districts=[BreakdownRow(**_row(r)) for r in rep.districts],
        ),
        ranking=RankingRead(method="composite score 0-100", weights=dict(reports.SCORE_WEIGHTS)),
        series=[SeriesPoint(day=d, tickets=n) for d, n in rep.series],
        hotspots=rep.hotspots,
    )


@router.get("/report", response_model=ReportRead)
async def stats_report(
    rt: RuntimeDep, session: DbSession, principal: CurrentPrincipal, q: ReportParams
) -> ReportRead:
    """Volume, the rates cities are ranked by, the department ranking, breakdowns by
    service, channel and district, tickets per day, and today's hot spots — over tickets
    created in the period (default: the last 30 days) that match every filter."""
    rep = await _build(rt, session, principal, q)
    return report_read(rep, rt.settings.TIMEZONE)


class AnnouncedHotspot(HotspotFacts):
    day: date
    announced_at: datetime
    with_you: int | None = Field(
        None,
        description="for a department user: how many of the day's tickets of this service "
        "in this district are already with its departments (the rest are still with the "
        "contact centre or elsewhere); null for those who see every ticket",
    )


@router.get("/hotspots", response_model=list[AnnouncedHotspot])
async def announced_hotspots(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    day: Annotated[date | None, Query(description="local day; default today")] = None,
) -> list[AnnouncedHotspot]:
    """The hot spots announced (``hotspot.detected``) on a day, most improbable first. A
    department user sees those its departments are to act on."""
    require_stats_reader(principal)
    cat = await rt.catalogue()
    day = day or utcnow().astimezone(rt.settings.tz).date()
    rows = list(
        (
            await session.execute(
                select(HotspotAlert)
                .where(HotspotAlert.day == day)
                .order_by(HotspotAlert.p_value, HotspotAlert.id)
            )
        ).scalars()
    )
    mine: dict[tuple[int, int], int] | None = None
    if rows and not principal.sees_all:
        start, end = reports.local_day(day, rt.settings.tz)
        mine = await reports.pair_counts(
            session, principal, reports.Filters(start, end), start, end
        )
    out = []
    for alert in rows:
        service = cat.service_by_id.get(alert.service_id)
        district = cat.district_by_id.get(alert.district_id)
        if service is None or district is None:
            continue  # retired from the catalogue
        owner = reports.hotspot_owner(cat, service, district.code)
        if not principal.sees_all and owner not in principal.scope:
            continue
        out.append(
            AnnouncedHotspot(
                day=alert.day,
                service=service.code,
                service_name_zh=service.name_zh,
                service_name_en=service.name_en,
                district=district.code,
                district_name_zh=district.name_zh,
                district_name_en=district.name_en,
                department=owner,
                count=alert.count,
                expected=alert.expected,
                p_value=alert.p_value,
                announced_at=alert.created_at,
                with_you=None
                if mine is None
                else mine.get((alert.service_id, alert.district_id), 0),
            )
        )
    return out


# ------------------------------------------------------------------ exports

LABELS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "summary": "汇总",
        "departments": "部门排名",
        "services": "按事项",
        "channels": "按渠道",
        "districts": "按区域",
        "series": "每日工单量",
        "hotspots": "热点",
        "tickets": "工单明细",
        "metric": "指标",
        "value": "数值",
        "rank": "排名",
        "score": "综合得分",
        "code": "代码",
        "name": "名称",
        "name_en": "英文名称",
        "level": "层级",
        "tickets_n": "工单量",
        "response_rate": "响应率",
        "on_time_rate": "按期办结率",
        "satisfaction_rate": "满意率",
        "resolution_rate": "解决率",
        "reopen_rate": "发回重办率",
        "avg_handling_hours": "平均办理时长(小时)",
        "day": "日期",
        "service": "事项",
        "district": "区域",
        "count": "当日数量",
        "baseline_mean": "基线日均",
        "ratio": "倍数",
        "p_value": "p值",
        "reference": "工单编号",
        "created_at": "受理时间",
        "channel": "渠道",
        "department": "承办部门",
        "status": "状态",
        "description": "诉求内容(摘要)",
        "period_from": "统计起始",
        "period_to": "统计截止",
        "truncated": "仅列出前 {shown} 条，共 {total} 条",
    },
    "en": {
        "summary": "Summary",
        "departments": "Department ranking",
        "services": "By service",
        "channels": "By channel",
        "districts": "By district",
        "series": "Tickets per day",
        "hotspots": "Hot spots",
        "tickets": "Tickets",
        "metric": "Metric",
        "value": "Value",
        "rank": "Rank",
        "score": "Score",
        "code": "Code",
        "name": "Name",
        "name_en": "Name (English)",
        "level": "Level",
        "tickets_n": "Tickets",
        "response_rate": "Response rate",
        "on_time_rate": "On-time rate",
        "satisfaction_rate": "Satisfaction rate",
        "resolution_rate": "Resolution rate",
        "reopen_rate": "Redo rate",
        "avg_handling_hours": "Avg handling hours",
        "day": "Day",
        "service": "Service",
        "district": "District",
        "count": "Count",
        "baseline_mean": "Baseline daily mean",
        "ratio": "Ratio",
        "p_value": "p-value",
        "reference": "Reference",
        "created_at": "Created",
        "channel": "Channel",
        "department": "Department",
        "status": "Status",
        "description": "Description (excerpt)",
        "period_from": "Period from",
        "period_to": "Period to",
        "truncated": "first {shown} of {total}",
    },
}
RATES = ("response_rate", "on_time_rate", "satisfaction_rate", "resolution_rate", "reopen_rate")


def _labels(principal: Principal) -> dict[str, str]:
    return LABELS["en"] if principal.locale.startswith("en") else LABELS["zh-CN"]


def _rates(f: reports.Figures) -> list[object]:
    return [getattr(f, r) for r in RATES] + [f.avg_handling_hours]


def export_tables(
    rep: reports.Report,
    tickets: list[reports.TicketLine],
    principal: Principal,
    tz: Any,
) -> list[export.Table]:
    t = _labels(principal)
    english = t is LABELS["en"]
    rate_heads = [t[r] for r in RATES] + [t["avg_handling_hours"]]

    def name(r: reports.Row) -> str:
        return r.name_en if english else r.name_zh

    s = rep.summary
    summary = export.Table(
        "summary",
        t["summary"],
        [t["metric"], t["value"]],
        [
            [t["period_from"], rep.filters.start.astimezone(tz)],
            [t["period_to"], rep.filters.end.astimezone(tz)],
            [t["department"], rep.filters.department or ""],
            [t["service"], rep.filters.service or ""],
            [t["channel"], rep.filters.channel.value if rep.filters.channel else ""],
            [t["district"], rep.filters.district or ""],
            [t["tickets_n"], s.tickets],
            *([t[r], getattr(s, r)] for r in RATES),
            [t["avg_handling_hours"], s.avg_handling_hours],
        ],
    )
    first_rate = 5
    departments = export.Table(
        "departments",
        t["departments"],
        [t["rank"], t["score"], t["code"], t["name"], t["level"], t["tickets_n"], *rate_heads],
        [
            [r.rank, r.score, r.code, name(r), r.level, r.figures.tickets, *_rates(r.figures)]
            for r in rep.departments
        ],
        frozenset(range(first_rate + 1, first_rate + 1 + len(RATES))),
    )

    def breakdown(key: str, rows: list[reports.Row]) -> export.Table:
        return export.Table(
            key,
            t[key],
            [t["code"], t["name"], t["tickets_n"], *rate_heads],
            [[r.code, name(r), r.figures.tickets, *_rates(r.figures)] for r in rows],
            frozenset(range(3, 3 + len(RATES))),
        )

    series = export.Table(
        "series", t["series"], [t["day"], t["tickets_n"]], [[d, n] for d, n in rep.series]
    )
    hs = rep.hotspots
    hotspots = export.Table(
        "hotspots",
        f"{t['hotspots']} {hs.day.isoformat()}",
        [
            t["service"],
            t["name"],
            t["district"],
            t["name"],
            t["count"],
            t["baseline_mean"],
            t["ratio"],
            t["p_value"],
        ],
        [
            [
                h.service,
                h.service_name_en if english else h.service_name_zh,
                h.district,
                h.district_name_en if english else h.district_name_zh,
                h.count,
                h.baseline_mean,
                h.ratio,
                h.p_value,
            ]
            for h in hs.items
        ],
    )
    title = t["tickets"]
    if len(tickets) < s.tickets:
        title += " (" + t["truncated"].format(shown=len(tickets), total=s.tickets) + ")"
    ticket_table = export.Table(
        "tickets",
        title,
        [
            t["reference"],
            t["created_at"],
            t["channel"],
            t["service"],
            t["district"],
            t["department"],
            t["status"],
            t["description"],
        ],
        [
            [
                x.reference,
                x.created_at.astimezone(tz),
                x.channel,
                x.service,
                x.district,
                x.department,
                x.status,
                x.description,
            ]
            for x in tickets
        ],
    )
    return [
        summary,
        departments,
        breakdown("services", rep.services),
        breakdown("channels", rep.channels),
        breakdown("districts", rep.districts),
        series,
        hotspots,
        ticket_table,
    ]


async def _export(
    rt: RuntimeDep,
    session: DbSession,
    principal: Principal,
    q: ReportQuery,
    table: TableName,
    limit: int,
) -> tuple[list[export.Table], str, dict[str, str]]:
    rep = await _build(rt, session, principal, q)
    lines: list[reports.TicketLine] = []
    if table in ("all", "tickets") and limit:
        lines = await reports.ticket_lines(
            session, principal, rep.filters, await rt.catalogue(), limit=limit, excerpt=EXCERPT
        )
    tz = rt.settings.tz
    tables = export_tables(rep, lines, principal, tz)
    if table != "all":
        tables = [x for x in tables if x.name == table]
    f = rep.filters
    stem = f"statistics_{f.start.astimezone(tz):%Y%m%d}-{f.end.astimezone(tz):%Y%m%d}"
    if f.department:
        stem += f"_{f.department}"
    if table != "all":
        stem += f"_{table}"
    headers = {"Cache-Control": "no-store"}
    if len(lines) < rep.summary.tickets and table in ("all", "tickets"):
        headers["X-Tickets-Truncated"] = f"{len(lines)}/{rep.summary.tickets}"
    return tables, stem, headers


TableParam = Annotated[
    TableName, Query(description="One table, or all of them (CSV: as titled sections)")
]
LimitParam = Annotated[
    int, Query(ge=0, le=TICKET_ROWS_MAX, description="Most ticket rows to include")
]


@router.get("/export.csv", response_class=Response)
async def export_csv(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    q: ReportParams,
    table: TableParam = "all",
    limit: LimitParam = TICKET_ROWS_DEFAULT,
) -> Response:
    """The report's tables and the period's tickets as CSV (UTF-8 with BOM); text that a
    spreadsheet would read as a formula is quoted with a leading '."""
    tables, stem, headers = await _export(rt, session, principal, q, table, limit)
    headers["Content-Disposition"] = export.content_disposition(f"{stem}.csv")
    body = await asyncio.to_thread(export.to_csv, tables)  # keep the event loop free
    return Response(body, media_type=export.CSV_MEDIA_TYPE, headers=headers)


@router.get("/export.xlsx", response_class=Response)
async def export_xlsx(
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    q: ReportParams,
    table: TableParam = "all",
    limit: LimitParam = TICKET_ROWS_DEFAULT,
) -> Response:
    """The report's tables and the period's tickets as an XLSX workbook, one sheet per
    table; every text cell is stored as text, never as a formula."""
    tables, stem, headers = await _export(rt, session, principal, q, table, limit)
    headers["Content-Disposition"] = export.content_disposition(f"{stem}.xlsx")
    body = await asyncio.to_thread(export.to_xlsx, tables)  # seconds for big exports
    return Response(body, media_type=export.XLSX_MEDIA_TYPE, headers=headers)
