"""MMS media: Twilio's media URLs become attachments on the citizen's ticket.

Twilio is faked at the HTTP boundary (``httpx.MockTransport``): the API host answers
with a redirect to a CDN host, as the real one does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from channels.sms.media import (
    MAX_MEDIA_BYTES,
    RETRY_INTERVALS,
    MediaFetchError,
    enqueue_fetch,
    fetch_media,
    fetch_media_async,
    media_payload,
    parse_media,
)
from contact.channels import Media
from contact.jobs import RqJobs
from contact.models import (
    Attachment,
    Channel,
    DeliveryStatus,
    Direction,
    Message,
    TicketEvent,
)
from contact.principal import CITIZEN
from contact.runtime import Runtime
from contact.schemas import TicketCreate
from contact.service import open_ticket
from contact.settings import Settings
from tests.conftest import with_runtime as run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "twilio"
ACCOUNT = "AC" + "b" * 32
TOKEN = "twilio-auth-token-0123456789abcd"
MESSAGE_SID = "MM" + "a" * 32
CDN = "media.twiliocdn.test"


def sid(n: int) -> str:
    return f"ME{n:032x}"


def media_url(n: int, message_sid: str = MESSAGE_SID) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{message_sid}/Media/{sid(n)}"


# ---------------------------------------------------------------- real file bytes


def png_bytes() -> bytes:
    """A valid 1×1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg_bytes(size: int = 2048) -> bytes:
    """Exactly ``size`` bytes of JPEG framing: SOI, a JFIF APP0 segment, comment segments
    as payload (at most 64 KiB each, as the format requires), EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    head = b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
    parts = [head]
    remaining = size - len(head) - 2
    assert remaining >= 4
    while remaining >= 4:
        n = min(65533, remaining - 4)
        if 0 < remaining - 4 - n < 4:
            n -= 4  # leave room for one more whole segment
        parts.append(b"\xff\xfe" + struct.pack(">H", n + 2) + b"p" * n)
        remaining -= 4 + n
    assert remaining == 0
    return b"".join([*parts, b"\xff\xd9"])


EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


# ---------------------------------------------------------------- fake Twilio


@dataclass
class Served:
    body: bytes
    content_type: str
    status: int = 200
    chunked: bool = False  # streamed without Content-Length
    redirect: bool = True  # api.twilio.com answers 307 to the CDN
    error: bool = False  # the connection fails


class FakeTwilio:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[httpx.Request] = []
        self.chunks_sent = 0

    def serve(self, n: int, body: bytes, content_type: str, **kw: Any) -> str:
        self.files[sid(n)] = Served(body, content_type, **kw)
        return media_url(n)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.requests]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = request.url.path.rsplit("/", 1)[-1]
        served = self.files.get(name)
        if served is None:
            return httpx.Response(404, text="The requested resource was not found")
        if served.error:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.host == "api.twilio.com" and served.redirect:
            location = f"https://{CDN}/{ACCOUNT}/{name}?Expires=1&Signature=cdn-secret"
            return httpx.Response(307, headers={"Location": location})
        headers = {"Content-Type": served.content_type}
        if served.chunked:
            return httpx.Response(served.status, headers=headers, content=self._stream(served.body))
        return httpx.Response(served.status, headers=headers, content=served.body)

    async def _stream(self, body: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            self.chunks_sent += 1
            yield body[i : i + 64 * 1024]


# ---------------------------------------------------------------- harness


@pytest.fixture
def media_settings(isolated_settings: Settings, tmp_path: Path) -> Settings:
    return isolated_settings.model_copy(
        update={
            "MEDIA_DIR": tmp_path / "media",
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
        }
    )


async def text_in(
    rt: Runtime, body: str = "解放路的路灯坏了，照片见附件", message_sid: str = MESSAGE_SID
) -> tuple[int, int]:
    """A citizen's MMS as intake stores it: a ticket and the inbound message on it.

    Returns (message id, ticket id).
    """
    async with rt.db.session() as s:
        ticket, _ = await open_ticket(
            rt,
            s,
            TicketCreate(description=body, channel=Channel.sms, phone="+8613800138000"),
            CITIZEN,
        )
        message = Message(
            ticket_id=ticket.id,
            channel=Channel.sms,
            direction=Direction.inbound,
            provider="twilio",
            provider_id=message_sid,
            from_addr="+8613800138000",
            to_addr="+8612345",
            body=body,
            status=DeliveryStatus.received,
        )
        s.add(message)
        await s.flush()
        ids = (message.id, ticket.id)
        await rt.commit(s)
    return ids


async def attachments(rt: Runtime) -> list[Attachment]:
    async with rt.db.session() as s:
        return list((await s.execute(select(Attachment).order_by(Attachment.id))).scalars())


def stored_files(settings: Settings) -> list[Path]:
    root = settings.MEDIA_DIR
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def payload(*urls_and_types: tuple[str, str]) -> list[dict[str, str]]:
    return media_payload([Media(url, ct) for url, ct in urls_and_types])


# ---------------------------------------------------------------- downloads


class TestAttachments:
    def test_a_photo_becomes_an_attachment_on_the_ticket(self, media_settings: Settings) -> None:
        photo = jpeg_bytes(40_000)
        twilio = FakeTwilio()
        url = twilio.serve(1, photo, "image/jpeg")

        async def scenario(rt: Runtime) -> None:
            message_id, ticket_id = await text_in(rt)
            added = await fetch_media_async(
                rt, message_id, payload((url, "image/jpeg")), transport=twilio.transport
            )
            assert added == 1
            [att] = await attachments(rt)
            digest = hashlib.sha256(photo).hexdigest()
            assert att.ticket_id == ticket_id and att.message_id == message_id
            assert (att.size, att.sha256, att.content_type) == (len(photo), digest, "image/jpeg")
            assert att.filename == f"{sid(1)}.jpg" and not att.public
            on_disk = media_settings.MEDIA_DIR / att.path
            assert on_disk == media_settings.MEDIA_DIR / digest[:2] / f"{digest}.jpg"
            assert on_disk.read_bytes() == photo
            assert stored_files(media_settings) == [on_disk]  # no temp file left behind
            async with rt.db.session() as s:
                kinds = (
                    await s.execute(
                        select(TicketEvent.kind, TicketEvent.public).where(
                            TicketEvent.ticket_id == ticket_id
                        )
                    )
                ).all()
            assert ("attachment_added", False) in [tuple(k) for k in kinds]

        run(media_settings, scenario)

    def test_a_message_without_a_ticket_keeps_its_photo(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            async with rt.db.session() as s:
                message = Message(
                    channel=Channel.sms,
                    direction=Direction.inbound,
                    provider="twilio",
                    provider_id=MESSAGE_SID,
                    body="",
                    status=DeliveryStatus.received,
                )
                s.add(message)
                await s.commit()
            media = payload((url, "image/png"))
            assert await fetch_media_async(rt, message.id, media, transport=twilio.transport) == 1
            [att] = await attachments(rt)
            assert att.message_id == message.id and att.ticket_id is None

        run(media_settings, scenario)

    def test_two_media_of_different_types_both_attach(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        jpg = twilio.serve(1, jpeg_bytes(), "image/jpeg")
        png = twilio.serve(2, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((jpg, "image/jpeg"), (png, "image/png"))
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 2
            assert sorted(a.content_type for a in await attachments(rt)) == [
                "image/jpeg",
                "image/png",
            ]
            assert sorted(p.suffix for p in stored_files(media_settings)) == [".jpg", ".png"]

        run(media_settings, scenario)

    def test_credentials_go_to_twilio_and_not_to_the_cdn(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            await fetch_media_async(
                rt, message_id, payload((url, "image/png")), transport=twilio.transport
            )
            assert twilio.hosts() == ["api.twilio.com", CDN]
            to_twilio, to_cdn = twilio.requests
            expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
            assert to_twilio.headers.get("authorization") == expected
            assert "authorization" not in to_cdn.headers
            assert TOKEN not in str(to_cdn.url)
            assert len(await attachments(rt)) == 1

        run(media_settings, scenario)

    def test_a_redirect_to_plain_http_is_not_followed(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.host == "api.twilio.com":
                twilio.requests.append(request)
                return httpx.Response(302, headers={"Location": f"http://{CDN}/x.png"})
            return twilio.handle(request)

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            added = await fetch_media_async(
                rt, message_id, payload((url, "image/png")), transport=httpx.MockTransport(handler)
            )
            assert added == 0 and twilio.hosts() == ["api.twilio.com"]
            assert await attachments(rt) == []

        run(media_settings, scenario)


class TestRefused:
    def test_a_file_over_the_limit_is_skipped_and_nothing_stored(
        self, media_settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        twilio = FakeTwilio()
        big = jpeg_bytes(MAX_MEDIA_BYTES + 10)
        declared = twilio.serve(1, big, "image/jpeg")  # Content-Length says so
        streamed = twilio.serve(2, big, "image/jpeg", chunked=True)  # only the stream tells

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            with caplog.at_level(logging.WARNING, logger="channels.sms.media"):
                added = await fetch_media_async(
                    rt,
                    message_id,
                    payload((declared, "image/jpeg"), (streamed, "image/jpeg")),
                    transport=twilio.transport,
                )
            assert added == 0
            assert await attachments(rt) == []
            assert stored_files(media_settings) == []
            # The stream was abandoned just past the limit, not read to its end.
            assert twilio.chunks_sent <= MAX_MEDIA_BYTES // (64 * 1024) + 2
            refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert len(refused) == 2 and all("too big" in m for m in refused)

        run(media_settings, scenario)

    def test_a_file_just_under_the_limit_is_kept(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, jpeg_bytes(MAX_MEDIA_BYTES), "image/jpeg", chunked=True)

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((url, "image/jpeg"))
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 1
            [att] = await attachments(rt)
            assert att.size == MAX_MEDIA_BYTES

        run(media_settings, scenario)

    def test_wrong_types_are_skipped_and_nothing_stored(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        html = twilio.serve(1, b"<!doctype html><html>login</html>", "text/html; charset=utf-8")
        exe_as_jpeg = twilio.serve(2, EXE, "image/jpeg")  # the bytes give it away
        exe = twilio.serve(3, EXE, "application/x-msdownload")
        png_as_jpeg = twilio.serve(4, png_bytes(), "image/jpeg")  # served type and bytes disagree
        vcard = twilio.serve(5, b"BEGIN:VCARD\r\nEND:VCARD\r\n", "text/vcard")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload(
                (html, "image/jpeg"),
                (exe_as_jpeg, "image/jpeg"),
                (exe, "image/jpeg"),
                (png_as_jpeg, "image/jpeg"),
                (vcard, "text/vcard"),
            )
            added = await fetch_media_async(rt, message_id, media, transport=twilio.transport)
            assert added == 0
            assert await attachments(rt) == []
            assert stored_files(media_settings) == []
            # A type refused in the webhook itself is not even downloaded.
            assert sid(5) not in "".join(str(r.url) for r in twilio.requests)

        run(media_settings, scenario)

    def test_a_missing_media_is_skipped_without_failing_the_job(
        self, media_settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> None:
        twilio = FakeTwilio()
        ok = twilio.serve(2, png_bytes(), "image/png")
        gone = media_url(1)  # Twilio answers 404

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            with caplog.at_level(logging.WARNING, logger="channels.sms.media"):
                added = await fetch_media_async(
                    rt,
                    message_id,
                    payload((gone, "image/png"), (ok, "image/png")),
                    transport=twilio.transport,
                )
            assert added == 1
            [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert "404" in warning and sid(1) in warning
            # Neither the credentials nor any URL end up in the log.
            assert TOKEN not in warning and "https://" not in warning

        run(media_settings, scenario)

    def test_urls_that_are_not_twilio_media_are_never_fetched(
        self, media_settings: Settings
    ) -> None:
        twilio = FakeTwilio()
        twilio.serve(1, png_bytes(), "image/png")
        evil = [
            "https://evil.example/2010-04-01/Accounts/x/Messages/y/Media/z",
            media_url(1).replace("https://", "http://"),
            media_url(1).replace("api.twilio.com", "api.twilio.com.evil.example"),
            media_url(1).replace("https://", f"https://{ACCOUNT}:{TOKEN}@"),
            media_url(1) + "?redirect=https://evil.example",
        ]

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload(*[(u, "image/png") for u in evil])
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 0
            assert twilio.requests == []

        run(media_settings, scenario)


class TestRetries:
    def test_a_network_error_fails_the_job_after_the_other_media(
        self, media_settings: Settings
    ) -> None:
        twilio = FakeTwilio()
        down = twilio.serve(1, png_bytes(), "image/png", error=True)
        ok = twilio.serve(2, jpeg_bytes(), "image/jpeg")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((down, "image/png"), (ok, "image/jpeg"))
            with pytest.raises(MediaFetchError, match=sid(1)):
                await fetch_media_async(rt, message_id, media, transport=twilio.transport)
            assert [a.filename for a in await attachments(rt)] == [f"{sid(2)}.jpg"]

            # The retry (the network is back) fetches only what is missing.
            twilio.files[sid(1)].error = False
            twilio.requests.clear()
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 1
            assert all(sid(2) not in str(r.url) for r in twilio.requests)
            assert sorted(a.filename for a in await attachments(rt)) == [
                f"{sid(1)}.png",
                f"{sid(2)}.jpg",
            ]

        run(media_settings, scenario)

    def test_a_server_error_is_retried_not_skipped(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, b"upstream unavailable", "text/plain", status=503)

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            with pytest.raises(MediaFetchError, match="503"):
                await fetch_media_async(
                    rt, message_id, payload((url, "image/png")), transport=twilio.transport
                )
            assert await attachments(rt) == []

        run(media_settings, scenario)


class TestIdempotence:
    def test_running_twice_stores_once(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, jpeg_bytes(), "image/jpeg")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((url, "image/jpeg"))
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 1
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 0
            assert len(await attachments(rt)) == 1
            assert len(stored_files(media_settings)) == 1
            assert len(twilio.requests) == 2  # the second run downloaded nothing

        run(media_settings, scenario)

    def test_two_runs_at_once_store_once(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, jpeg_bytes(), "image/jpeg")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((url, "image/jpeg"))
            results = await asyncio.gather(
                fetch_media_async(rt, message_id, media, transport=twilio.transport),
                fetch_media_async(rt, message_id, media, transport=twilio.transport),
            )
            assert sorted(results) == [0, 1]
            assert len(await attachments(rt)) == 1

        run(media_settings, scenario)

    def test_the_same_photo_twice_in_one_message_is_one_attachment(
        self, media_settings: Settings
    ) -> None:
        twilio = FakeTwilio()
        photo = jpeg_bytes()
        first = twilio.serve(1, photo, "image/jpeg")
        again = twilio.serve(2, photo, "image/jpeg")

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            media = payload((first, "image/jpeg"), (again, "image/jpeg"))
            assert await fetch_media_async(rt, message_id, media, transport=twilio.transport) == 1
            assert len(await attachments(rt)) == 1

        run(media_settings, scenario)

    def test_the_same_photo_on_two_messages_is_stored_once_on_disk(
        self, media_settings: Settings
    ) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            first, _ = await text_in(rt, message_sid="MM" + "1" * 32)
            second, _ = await text_in(rt, body="还有一张", message_sid="MM" + "2" * 32)
            media = payload((url, "image/png"))
            for message_id in (first, second):
                await fetch_media_async(rt, message_id, media, transport=twilio.transport)
            atts = await attachments(rt)
            assert [a.message_id for a in atts] == [first, second]
            assert len({a.path for a in atts}) == 1 and len(stored_files(media_settings)) == 1

        run(media_settings, scenario)

    def test_an_unknown_message_is_skipped(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            media = payload((url, "image/png"))
            assert await fetch_media_async(rt, 999_999, media, transport=twilio.transport) == 0
            assert twilio.requests == []

        run(media_settings, scenario)


class TestScheduling:
    def test_without_redis_the_fetch_runs_in_process(self, media_settings: Settings) -> None:
        twilio = FakeTwilio()
        url = twilio.serve(1, png_bytes(), "image/png")

        async def scenario(rt: Runtime) -> None:
            message_id, ticket_id = await text_in(rt)
            task = await enqueue_fetch(
                rt, message_id, [Media(url, "image/png")], transport=twilio.transport
            )
            assert task is not None
            assert await task == 1
            [att] = await attachments(rt)
            assert att.ticket_id == ticket_id
            assert await enqueue_fetch(rt, message_id, []) is None

        run(media_settings, scenario)

    def test_with_redis_an_rq_job_with_retries_is_queued(self, media_settings: Settings) -> None:
        class RecordingQueue:
            def __init__(self) -> None:
                self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

            def enqueue(self, func: Any, *args: Any, **kwargs: Any) -> None:
                self.calls.append((func, args, kwargs))

        async def scenario(rt: Runtime) -> None:
            message_id, _ = await text_in(rt)
            jobs = RqJobs.__new__(RqJobs)  # no Redis needed to see what would be queued
            queue = jobs.queue = RecordingQueue()  # type: ignore[assignment]
            own, rt.jobs = rt.jobs, jobs
            media = [Media(media_url(1), "image/jpeg")]
            try:
                assert await enqueue_fetch(rt, message_id, media) is None
            finally:
                rt.jobs = own  # the runtime closes the jobs it was built with
            [(func, args, kwargs)] = queue.calls
            assert func is fetch_media and args == (message_id, media_payload(media))
            assert kwargs["retry"].intervals == list(RETRY_INTERVALS)
            assert await attachments(rt) == []  # nothing ran here

        run(media_settings, scenario)


# ---------------------------------------------------------------- the webhook form


class TestParseMedia:
    def test_two_media(self) -> None:
        form = {
            "NumMedia": "2",
            "MediaUrl0": media_url(1),
            "MediaContentType0": "image/jpeg",
            "MediaUrl1": media_url(2),
            "MediaContentType1": "Image/PNG",
        }
        assert parse_media(form) == (
            Media(media_url(1), "image/jpeg"),
            Media(media_url(2), "image/png"),
        )

    def test_no_media(self) -> None:
        assert parse_media({"Body": "hi"}) == ()
        assert parse_media({"NumMedia": "0", "MediaUrl0": media_url(1)}) == ()

    @pytest.mark.parametrize("num", ["two", "", " ", "-1", "1.5", "0x2", "２"])
    def test_garbled_num_media_reads_the_urls_present(self, num: str) -> None:
        form = {"NumMedia": num, "MediaUrl0": media_url(1), "MediaUrl3": media_url(4)}
        assert [m.url for m in parse_media(form)] == [media_url(1), media_url(4)]

    def test_missing_urls_and_types(self) -> None:
        form = {"NumMedia": "3", "MediaUrl0": media_url(1), "MediaUrl2": media_url(3)}
        assert parse_media(form) == (Media(media_url(1), ""), Media(media_url(3), ""))
        assert parse_media({"NumMedia": "2"}) == ()

    def test_at_most_ten(self) -> None:
        form = {"NumMedia": "50"} | {f"MediaUrl{i}": media_url(i) for i in range(50)}
        assert len(parse_media(form)) == 10

    def test_only_twilio_media_urls(self) -> None:
        good = media_url(1)
        for bad in (
            good.replace("https://", "http://"),
            good.replace("api.twilio.com", "evil.example"),
            good.replace("api.twilio.com", "api.twilio.com.evil.example"),
            good.replace("api.twilio.com", "api.twilio.com:8443"),
            good.replace("https://", "https://user:pw@"),
            good + "?x=1",
            good + "#frag",
            good.replace("/Media/", "/../Media/"),
            "javascript:alert(1)",
            "https://api.twilio.com/",
        ):
            assert parse_media({"NumMedia": "1", "MediaUrl0": bad}) == (), bad
        assert parse_media({"NumMedia": "1", "MediaUrl0": f" {good}\n"}) == (Media(good, ""),)

    def test_the_same_url_twice_is_one_media(self) -> None:
        form = {"NumMedia": "2", "MediaUrl0": media_url(1), "MediaUrl1": media_url(1)}
        assert len(parse_media(form)) == 1

    def test_twilios_own_mms_example(self) -> None:
        path = SHARED / "twilio-labs_plugin-webhook_mms.json"
        if not path.exists():
            pytest.skip(f"shared data not found: {path}")
        form = {k: str(v) for k, v in json.loads(path.read_text())["body"].items()}
        [media] = parse_media(form)
        assert media.content_type == "image/jpeg"
        assert media.url == form["MediaUrl0"]
