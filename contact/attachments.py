"""Files on a ticket: a department's documents and photos sent with its reply (答复附件),
an agent's scan of a letter. Upload and download through the REST API, scoped like
the ticket itself: whoever may not see the ticket gets 404 for its files too.

A file is taken for what its first bytes show (PDF, JPEG, PNG, WebP, GIF), never for
its name or declared type, stored content-addressed under ``MEDIA_DIR`` and served
back as a download.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from hashlib import sha256
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import FileResponse, Response
from sqlalchemy import func, select

from contact import bus, repository
from contact.deps import CurrentPrincipal, DbSession, RuntimeDep
from contact.errors import ContactError, NotFound
from contact.events import TicketUpdated
from contact.lifecycle import OPEN_FOR_DEPT, Actor
from contact.media import EXTENSIONS, media_path, sniff, store_file
from contact.models import Attachment, TicketEvent, TicketStatus, utcnow
from contact.schemas import AttachmentRead

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])

DOCUMENT_TYPES = frozenset(
    {"application/pdf", "image/jpeg", "image/png", "image/webp", "image/gif"}
)
MAX_BYTES = 10 * 1024 * 1024
MAX_PER_TICKET = 30
# Staff attach files while a ticket is being handled; a department only to what it holds.
OPEN_STATES = frozenset(
    {
        TicketStatus.received,
        TicketStatus.dispatched,
        TicketStatus.accepted,
        TicketStatus.returned,
        TicketStatus.reopened,
        TicketStatus.resolved,
    }
)


def attachment_read(reference: str, a: Attachment) -> AttachmentRead:
    return AttachmentRead(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size=a.size,
        public=a.public,
        created_at=a.created_at,
        url=f"/api/v1/tickets/{reference}/attachments/{a.id}",
    )


def safe_filename(name: str | None, content_type: str) -> str:
    """The uploader's file name without a path, control characters or odd punctuation,
    ending in the extension of what the file really is."""
    base = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    stem = re.sub(r"[^\w .()\-]+", "_", base.rsplit(".", 1)[0]).strip(" ._") or "file"
    return f"{stem[:120]}.{EXTENSIONS[content_type]}"


class FileRefused(ContactError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message, code=code)
        self.http_status = status


@router.post("/{reference}/attachments", status_code=201, response_model=AttachmentRead)
async def upload(
    reference: str,
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="PDF or image, at most 10 MB")],
    public: Annotated[bool, Form(description="shown to the citizen on the track page")] = False,
) -> AttachmentRead:
    """Attach a file to a ticket (a department's reply documents, a scanned letter)."""
    ticket, _ = await repository.get_ticket(session, principal, reference, for_update=True)
    if principal.actor == Actor.department:
        allowed = ticket.status in OPEN_FOR_DEPT
    else:
        allowed = principal.sees_all and ticket.status in OPEN_STATES
    if not allowed:
        raise FileRefused(
            409, "ticket_not_open", f"files cannot be added to a {ticket.status.value} ticket"
        )
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FileRefused(413, "file_too_large", "the file is larger than 10 MB")
    if not data:
        raise FileRefused(422, "file_empty", "the file is empty")
    content_type = sniff(data[:32])
    if content_type not in DOCUMENT_TYPES:
        raise FileRefused(
            415, "file_type_refused", "only PDF documents and JPEG, PNG, WebP or GIF images"
        )
    count = (
        await session.execute(
            select(func.count()).select_from(Attachment).where(Attachment.ticket_id == ticket.id)
        )
    ).scalar_one()
    if count >= MAX_PER_TICKET:
        raise FileRefused(409, "too_many_files", f"a ticket holds at most {MAX_PER_TICKET} files")

    digest = sha256(data).hexdigest()
    final = media_path(rt.settings.MEDIA_DIR, digest, EXTENSIONS[content_type])
    await asyncio.to_thread(store_file, final, data)
    now = utcnow()
    att = Attachment(
        ticket_id=ticket.id,
        filename=safe_filename(file.filename, content_type),
        content_type=content_type,
        size=len(data),
        sha256=digest,
        path=final.relative_to(rt.settings.MEDIA_DIR).as_posix(),
        public=public,
        created_at=now,
    )
    session.add(att)
    await session.flush()
    event = TicketEvent(
        ticket_id=ticket.id,
        kind="attachment_added",
        from_status=ticket.status.value,
        to_status=ticket.status.value,
        actor_id=principal.user_id,
        actor=principal.name,
        data={"attachment": att.id, "filename": att.filename},
        public=public,
        created_at=now,
    )
    session.add(event)
    await session.flush()
    cat = await rt.catalogue()
    dept = cat.dept_by_id.get(ticket.department_id or -1)
    await bus.record(
        session,
        TicketUpdated(
            reference=ticket.reference,
            ticket_id=ticket.id,
            kind="attachment_added",
            status=ticket.status.value,
            department=dept.code if dept else None,
            event_id=event.id,
        ),
        bus.Audience(department=dept.code if dept else None),
    )
    await rt.commit(session)
    return attachment_read(ticket.reference, att)


@router.get("/{reference}/attachments/{attachment_id}", response_class=Response)
async def download(
    reference: str,
    attachment_id: int,
    rt: RuntimeDep,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    """The file, as a download (never rendered inline in the staff pages' origin)."""
    ticket, _ = await repository.get_ticket(session, principal, reference)
    att = (
        await session.execute(
            select(Attachment).where(
                Attachment.id == attachment_id, Attachment.ticket_id == ticket.id
            )
        )
    ).scalar_one_or_none()
    if att is None:
        raise NotFound("no such file on this ticket", code="attachment_not_found")
    path = (rt.settings.MEDIA_DIR / att.path).resolve()
    if rt.settings.MEDIA_DIR.resolve() not in path.parents or not path.is_file():
        raise NotFound("the file is missing from the media store", code="attachment_missing")
    return FileResponse(
        path,
        media_type=att.content_type,
        filename=att.filename,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


async def ticket_attachments(session: DbSession, ticket_id: int) -> list[Attachment]:
    return list(
        (
            await session.execute(
                select(Attachment).where(Attachment.ticket_id == ticket_id).order_by(Attachment.id)
            )
        )
        .scalars()
        .all()
    )
