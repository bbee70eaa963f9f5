"""MMS media: the Twilio webhook's ``NumMedia`` / ``MediaUrlN`` / ``MediaContentTypeN``
become attachments, downloaded by a job with the account's credentials.

What is accepted, and why:

- **URLs** (:func:`parse_media`): only ``https://api.twilio.com/2010-04-01/Accounts/AC…/
  Messages/(MM|SM)…/Media/ME…`` — no user info, no port other than 443, no query, no
  fragment. The account's credentials are sent with the request, so nothing else is
  ever fetched from a webhook. At most :data:`MAX_MEDIA` (Twilio's own limit, 10) per
  message; duplicates are dropped. ``NumMedia`` says how many indexes to read; when it
  is missing or not a whole number, ``MediaUrl0`` … ``MediaUrl9`` are read as present.
  The form is signature-checked before it gets here, so a present URL is Twilio's.
- **Redirects**: Twilio answers with a redirect to its CDN. Up to
  :data:`MAX_REDIRECTS` are followed, https only; the credentials go to
  ``api.twilio.com`` and never to the host redirected to.
- **Size**: at most :data:`MAX_MEDIA_BYTES` (5 MB, Twilio's MMS limit) per file: refused
  on ``Content-Length`` before reading, and the stream is aborted past the limit.
- **Type**: :data:`ALLOWED` only (JPEG, PNG, GIF, WebP, HEIC images; AMR and MP3 audio;
  MP4 video). The response's ``Content-Type`` must be one of them *and* agree with the
  file's magic bytes; the stored type is the sniffed one. A declared
  ``MediaContentTypeN`` outside the list is refused without downloading.
- **Outcome**: a file under ``MEDIA_DIR/<sha256[:2]>/<sha256>.<ext>`` (written to a temp
  file and renamed; content-addressed, so the same bytes are stored once) and an
  :class:`~contact.models.Attachment` on the message and its ticket (not public), with
  a non-public ``attachment_added`` history event on the ticket.
- **Idempotent**: one attachment per message and media SID (its ``filename`` is
  ``<MediaSid>.<ext>``; an attachment already there is not downloaded again) and per
  message and sha256 (the same bytes twice in one message are one attachment). The
  check and the insert run under a lock on the message row.
- **Failures**: refused media (too big, wrong type, 4xx such as 404, a bad URL) is
  logged at WARNING — media SID and reason, never the URL's query or credentials — and
  skipped; the job does not fail for it. A network error, a timeout, 429 or 5xx is
  transient: the other media are still done, then :class:`MediaFetchError` is raised
  so the job is retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import or_, select, update

from contact.channels import Media
from contact.media import media_path, sniff, store_file
from contact.models import Attachment, Message, Ticket, TicketEvent, utcnow
from contact.runtime import Runtime

log = logging.getLogger(__name__)

MAX_MEDIA = 10  # Twilio sends at most 10 media per message
MAX_MEDIA_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
TWILIO_API_HOST = "api.twilio.com"
# Per request phase; the whole download of one file is also bounded.
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
FILE_DEADLINE_SECONDS = 120.0

# Allowed types and the extension stored.
ALLOWED: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/heic": "heic",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
}
# Other names phones and CDNs use for the same types.
ALIASES: dict[str, str] = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/heif": "image/heic",
    "audio/mp3": "audio/mpeg",
}

_SID = "[0-9a-fA-F]{32}"
_MEDIA_PATH = re.compile(
    rf"/2010-04-01/Accounts/AC{_SID}/Messages/(?:MM|SM){_SID}/Media/(?P<sid>ME{_SID})"
)


# ---------------------------------------------------------------- the webhook form


def media_sid(url: str) -> str | None:
    """The ``ME…`` SID of a Twilio media URL, or None when the URL is not one we fetch."""
    if not isinstance(url, str) or len(url) > 300:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme != "https"
        or parts.hostname != TWILIO_API_HOST
        or parts.username is not None
        or parts.password is not None
        or port not in (None, 443)
        or parts.query
        or parts.fragment
    ):
        return None
    m = _MEDIA_PATH.fullmatch(parts.path)
    return m.group("sid") if m else None


def normalize_type(value: str | None) -> str:
    """``Image/JPEG; charset=x`` → ``image/jpeg``; aliases to their canonical name."""
    t = (value or "").split(";", 1)[0].strip().lower()[:100]
    return ALIASES.get(t, t)


def _count(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    return min(int(raw), MAX_MEDIA)


def parse_media(params: Mapping[str, str]) -> tuple[Media, ...]:
    """The media of a Twilio messaging webhook form (see the module notes for the rules).

    Never raises: a garbled field loses that media, not the message.
    """
    n = _count(params.get("NumMedia"))
    indexes = range(n if n is not None else MAX_MEDIA)
    found: list[Media] = []
    seen: set[str] = set()
    for i in indexes:
        url = params.get(f"MediaUrl{i}")
        if not url:
            continue
        url = str(url).strip()
        if media_sid(url) is None:
            log.warning("MMS media %s refused: not a Twilio media URL", i)
            continue
        if url in seen:
            continue
        seen.add(url)
        found.append(
            Media(url=url, content_type=normalize_type(params.get(f"MediaContentType{i}")))
        )
    return tuple(found)


def media_payload(media: Sequence[Media]) -> list[dict[str, str]]:
    """What the job takes (plain data, so rq can carry it)."""
    return [{"url": m.url, "content_type": m.content_type} for m in media]


# ---------------------------------------------------------------- bytes


# ---------------------------------------------------------------- the job


class MediaFetchError(Exception):
    """A transient failure (network, timeout, 429, 5xx): the job should be retried."""


class _Refused(Exception):
    """Permanently refused media: logged and skipped."""


@dataclass(frozen=True)
class _Download:
    data: bytes
    content_type: str  # sniffed, canonical


def _auth_for(url: httpx.URL, creds: httpx.BasicAuth | None) -> httpx.BasicAuth | None:
    """Credentials go to Twilio's API host over https, and nowhere else."""
    if creds is not None and url.scheme == "https" and url.host == TWILIO_API_HOST:
        return creds
    return None


async def _download(
    client: httpx.AsyncClient, url: str, creds: httpx.BasicAuth | None, max_bytes: int
) -> _Download:
    target = httpx.URL(url)
    for _ in range(MAX_REDIRECTS + 1):
        request = client.build_request("GET", target)
        response = await client.send(request, auth=_auth_for(target, creds), stream=True)
        try:
            if response.is_redirect:
                location = response.headers.get("location", "")
                try:
                    target = target.join(location)
                except httpx.InvalidURL:
                    raise _Refused("redirect to an invalid URL") from None
                if target.scheme != "https":
                    raise _Refused(f"redirect to a non-https URL on {target.host or '?'}")
                continue
            status = response.status_code
            if status == 429 or status == 408 or status >= 500:
                raise MediaFetchError(f"HTTP {status} from {target.host}")
            if status in (401, 403):
                raise _Refused(f"HTTP {status} from {target.host} (credentials refused?)")
            if status != 200:
                raise _Refused(f"HTTP {status} from {target.host}")
            declared = normalize_type(response.headers.get("content-type"))
            if declared not in ALLOWED:
                raise _Refused(f"type {declared or 'none'} not allowed")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise _Refused(f"too big ({length} bytes > {max_bytes})")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise _Refused(f"too big (more than {max_bytes} bytes)")
            if not body:
                raise _Refused("empty")
            sniffed = sniff(bytes(body[:32]))
            if sniffed is None:
                raise _Refused(f"content is not {declared} (unrecognised bytes)")
            if sniffed != declared:
                raise _Refused(f"content is {sniffed}, served as {declared}")
            return _Download(bytes(body), sniffed)
        finally:
            await response.aclose()
    raise _Refused(f"more than {MAX_REDIRECTS} redirects")


async def _known(rt: Runtime, message_id: int) -> tuple[bool, set[str]]:
    """Whether the message exists, and the media SIDs it already has attachments for."""
    async with rt.db.session() as s:
        exists = (
            await s.execute(select(Message.id).where(Message.id == message_id))
        ).scalar_one_or_none()
        names = (
            (
                await s.execute(
                    select(Attachment.filename).where(Attachment.message_id == message_id)
                )
            )
            .scalars()
            .all()
        )
    return exists is not None, {n.split(".", 1)[0] for n in names}


async def _attach(
    rt: Runtime, message_id: int, sid: str, path: str, digest: str, dl: _Download
) -> bool:
    """Insert the attachment unless the message already has it; True when inserted."""
    filename = f"{sid}.{ALLOWED[dl.content_type]}"
    async with rt.db.session() as s:
        try:
            # A no-op write locks the message first, so two runs for one message check
            # and insert one after the other: a row lock on PostgreSQL, the write lock on
            # SQLite (whose driver would otherwise read outside the transaction).
            await s.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(updated_at=Message.updated_at)
            )
            ticket_id = (
                await s.execute(select(Message.ticket_id).where(Message.id == message_id))
            ).scalar_one()
            dup = (
                await s.execute(
                    select(Attachment.id)
                    .where(
                        Attachment.message_id == message_id,
                        or_(
                            Attachment.sha256 == digest,
                            Attachment.filename.startswith(f"{sid}.", autoescape=True),
                        ),
                    )
                    .limit(1)
                )
            ).scalar_one_or_none()
            if dup is not None:
                await s.rollback()
                return False
            now = utcnow()
            att = Attachment(
                ticket_id=ticket_id,
                message_id=message_id,
                filename=filename,
                content_type=dl.content_type,
                size=len(dl.data),
                sha256=digest,
                path=path,
                public=False,
                created_at=now,
            )
            s.add(att)
            await s.flush()
            if ticket_id is not None:
                status = (
                    await s.execute(select(Ticket.status).where(Ticket.id == ticket_id))
                ).scalar_one()
                s.add(
                    TicketEvent(
                        ticket_id=ticket_id,
                        kind="attachment_added",
                        from_status=status.value,
                        to_status=status.value,
                        actor="citizen",
                        data={
                            "attachment_id": att.id,
                            "message_id": message_id,
                            "content_type": dl.content_type,
                            "size": len(dl.data),
                        },
                        public=False,
                        created_at=now,
                    )
                )
            await rt.commit(s)
            return True
        finally:
            rt.discard(s)


async def fetch_media_async(
    rt: Runtime,
    message_id: int,
    media: list[dict[str, Any]],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_bytes: int = MAX_MEDIA_BYTES,
) -> int:
    """Download a message's MMS media into attachments; the number of attachments added.

    Safe to run twice. Refused media is logged and skipped; a transient failure raises
    :class:`MediaFetchError` after the other media are done (see the module notes).
    """
    exists, done = await _known(rt, message_id)
    if not exists:
        log.warning("MMS media for message %s skipped: no such message", message_id)
        return 0
    s = rt.settings
    creds = (
        httpx.BasicAuth(s.TWILIO_ACCOUNT_SID, s.TWILIO_AUTH_TOKEN)
        if s.TWILIO_ACCOUNT_SID and s.TWILIO_AUTH_TOKEN
        else None
    )
    added = 0
    transient: list[str] = []
    seen: set[str] = set()
    async with httpx.AsyncClient(
        transport=transport,
        timeout=TIMEOUT,
        follow_redirects=False,
        headers={"User-Agent": "citizen-contact media fetch"},
    ) as client:
        for index, item in enumerate(media[:MAX_MEDIA]):
            raw = item.get("url") if isinstance(item, dict) else None
            url = raw.strip() if isinstance(raw, str) else ""
            sid = media_sid(url)
            if sid is None:
                log.warning(
                    "MMS media %s of message %s refused: not a Twilio media URL", index, message_id
                )
                continue
            if sid in done or sid in seen:
                continue  # already attached (an earlier run) or listed twice
            seen.add(sid)
            declared = normalize_type(str(item.get("content_type") or ""))
            if declared and declared not in ALLOWED:
                log.warning(
                    "MMS media %s of message %s refused: declared type %s not allowed",
                    sid,
                    message_id,
                    declared,
                )
                continue
            try:
                async with asyncio.timeout(FILE_DEADLINE_SECONDS):
                    dl = await _download(client, url, creds, max_bytes)
            except _Refused as exc:
                log.warning("MMS media %s of message %s refused: %s", sid, message_id, exc)
                continue
            except (httpx.TransportError, TimeoutError, MediaFetchError) as exc:
                reason = str(exc) or type(exc).__name__
                log.warning(
                    "MMS media %s of message %s not fetched, will retry: %s",
                    sid,
                    message_id,
                    reason,
                )
                transient.append(f"{sid}: {reason}")
                continue
            digest = sha256(dl.data).hexdigest()
            final = media_path(rt.settings.MEDIA_DIR, digest, ALLOWED[dl.content_type])
            await asyncio.to_thread(store_file, final, dl.data)
            rel = final.relative_to(rt.settings.MEDIA_DIR).as_posix()
            if await _attach(rt, message_id, sid, rel, digest, dl):
                added += 1
                log.info(
                    "MMS media %s of message %s stored: %s, %s bytes",
                    sid,
                    message_id,
                    dl.content_type,
                    len(dl.data),
                )
    if transient:
        raise MediaFetchError(
            f"message {message_id}: {len(transient)} media to retry ({'; '.join(transient)})"
        )
    return added


def fetch_media(message_id: int, media: list[dict[str, Any]]) -> int:
    """The rq job (``contact worker`` installs the runtime)."""
    from contact import tasks

    return tasks._run(fetch_media_async(tasks.RUNTIME, message_id, media))  # type: ignore[arg-type]


# ---------------------------------------------------------------- scheduling

# rq retries a failed fetch after these delays (seconds); needs rq's scheduler running.
RETRY_INTERVALS = (30, 120, 600, 1800, 3600)
# In-process (no Redis): attempts after these delays, then give up (logged).
IN_PROCESS_DELAYS = (0.0, 5.0, 30.0)


async def enqueue_fetch(
    rt: Runtime,
    message_id: int,
    media: Sequence[Media],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> asyncio.Task[int] | None:
    """Schedule :func:`fetch_media` for a stored message; call after its commit.

    With Redis: an rq job with retries. Without: a background task in this process
    (returned, so a caller may await it), a few attempts. Nothing when there is no media.
    ``transport`` is for the in-process path only (tests).
    """
    payload = media_payload(media)
    if not payload:
        return None
    from contact.jobs import RqJobs

    if isinstance(rt.jobs, RqJobs):
        from rq import Retry

        await asyncio.to_thread(
            rt.jobs.queue.enqueue,
            fetch_media,
            message_id,
            payload,
            retry=Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS)),
            result_ttl=60,
            failure_ttl=7 * 86400,
            description=f"fetch MMS media of message {message_id}",
        )
        return None

    async def attempts() -> int:
        for n, delay in enumerate(IN_PROCESS_DELAYS, 1):
            await asyncio.sleep(delay)
            try:
                return await fetch_media_async(rt, message_id, payload, transport=transport)
            except Exception:
                last = n == len(IN_PROCESS_DELAYS)
                log.warning(
                    "MMS media of message %s: attempt %s failed%s",
                    message_id,
                    n,
                    "; giving up" if last else "",
                    exc_info=last,
                )
        return 0

    return rt.spawn(attempts(), name=f"mms-media-{message_id}")
