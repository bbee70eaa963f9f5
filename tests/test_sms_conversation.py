"""Talking to the hotline by text: commands, ratings, opt-out, limits, odd input."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from contact.reference import grouped
from tests.conftest import PASSWORD, login, wait_for


def text(client: TestClient, phone: str, body: str, **extra: str) -> dict[str, Any]:
    r = client.post("/dev/sms", data={"From": phone, "Body": body, **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def resolve(client: TestClient, ref: str, reply: str = "已处理完毕。") -> str:
    agent = login(client, "agent1")
    dept = client.post(f"/api/v1/tickets/{ref}/actions/dispatch", headers=agent, json={}).json()[
        "department"
    ]
    clerk = login(client, f"{dept}-clerk")
    client.post(f"/api/v1/tickets/{ref}/actions/accept", headers=clerk)
    r = client.post(f"/api/v1/tickets/{ref}/actions/resolve", headers=clerk, json={"reply": reply})
    assert r.status_code == 200, r.text
    return str(dept)


def ticket(client: TestClient, ref: str) -> dict[str, Any]:
    return client.get(f"/api/v1/tickets/{ref}", headers=login(client, "agent1")).json()  # type: ignore[no-any-return]


def sent_to(client: TestClient, phone: str, template: str) -> list[dict[str, Any]]:
    rows = client.get("/dev/outbox.json").json()
    return [r for r in rows if r["to"] == phone and r["template"] == template]


class TestRating:
    def test_satisfied_rating_closes_and_counts_in_the_statistics(self, client: TestClient) -> None:
        phone = "+8613800139001"
        ref = text(client, phone, "小区路灯坏了")["ticket_reference"]
        resolve(client, ref)
        wait_for(lambda: sent_to(client, phone, "ticket_resolved"))
        out = text(client, phone, "1")
        assert out["ticket_reference"] == ref and "感谢" in out["reply"]
        t = ticket(client, ref)
        assert t["status"] == "closed" and t["satisfaction"] == 1
        stats = client.get("/api/v1/stats/summary", headers=login(client, "supervisor1")).json()
        assert stats["ratings"] == 1 and stats["satisfaction_rate"] == 1.0

    def test_not_satisfied_reopens_and_sends_it_back(self, client: TestClient) -> None:
        phone = "+8613800139002"
        ref = text(client, phone, "楼下餐馆油烟扰民")["ticket_reference"]
        dept = resolve(client, ref)
        out = text(client, phone, "不满意")
        assert "重新办理" in out["reply"]
        t = ticket(client, ref)
        assert t["status"] == "dispatched" and t["department"] == dept
        assert [e["kind"] for e in t["events"]][-2:] == ["reopened", "dispatched"]
        stats = client.get("/api/v1/stats/summary", headers=login(client, "supervisor1")).json()
        assert stats["satisfaction_rate"] == 0.0 and stats["reopened"] == 1

    def test_a_lone_digit_with_nothing_to_rate_gets_help(self, client: TestClient) -> None:
        out = text(client, "+8613800139003", "1")
        assert out["ticket_reference"] is None and "查询" in out["reply"]


class TestCommands:
    def test_status_of_my_ticket_by_text(self, client: TestClient) -> None:
        phone = "+8613800139010"
        ref = text(client, phone, "公交站台的广告牌松动了")["ticket_reference"]
        out = text(client, phone, f"查询 {grouped(ref)}")
        assert out["ticket_reference"] == ref and "已受理" in out["reply"]
        en = text(client, "+14155550199", "noise from the bar next door every night")
        out = text(client, "+14155550199", f"CX {en['ticket_reference']}")
        assert "received" in out["reply"]

    def test_status_of_someone_elses_ticket_is_not_revealed(self, client: TestClient) -> None:
        ref = text(client, "+8613800139011", "占道经营")["ticket_reference"]
        out = text(client, "+8613800139012", f"查询{ref}")
        assert "未找到" in out["reply"] and "占道" not in out["reply"]

    def test_a_mistyped_reference_is_caught(self, client: TestClient) -> None:
        ref = text(client, "+8613800139013", "井盖丢失")["ticket_reference"]
        typo = ref[:-1] + str((int(ref[-1]) + 1) % 10)
        out = text(client, "+8613800139013", f"CX {typo}")
        assert "编号有误" in out["reply"]

    @pytest.mark.parametrize("body", ["", "   ", "帮助", "HELP", "🙂🙂", "？"])
    def test_help_for_empty_unreadable_or_asked(self, client: TestClient, body: str) -> None:
        out = text(client, "+8613800139014", body)
        assert out["ticket_reference"] is None and out["reply"]

    def test_opt_out_and_back_in(self, client: TestClient) -> None:
        phone = "+8613800139015"
        ref = text(client, phone, "夜间施工噪音")["ticket_reference"]
        assert "退订" in text(client, phone, "TD")["reply"]
        resolve(client, ref)
        sup = login(client, "supervisor1")
        skipped = wait_for(
            lambda: [
                o
                for o in client.get("/api/v1/outbox", headers=sup).json()
                if o["template"] == "ticket_resolved" and o["status"] == "skipped"
            ]
        )
        assert skipped and not sent_to(client, phone, "ticket_resolved")
        assert text(client, phone, "START")["reply"]

    def test_language_is_remembered_for_texts_without_words(self, client: TestClient) -> None:
        phone = "+14155550123"
        ref = text(client, phone, "Broken traffic light at Main St")["ticket_reference"]
        resolve(client, ref, "The light was repaired.")
        out = text(client, phone, "2")
        assert out["reply"].startswith("Jiangcheng 311")


class TestFloodAndBlocking:
    def test_texts_past_the_limit_are_stored_not_answered(self, client: TestClient) -> None:
        phone = "+8613800139020"
        answers = [text(client, phone, f"第{i}条：垃圾没人清运")["reply"] for i in range(12)]
        assert all(answers[:10]) and answers[10:] == [None, None]
        sup = login(client, "supervisor1")
        ref = text(client, "+8613800139021", "另一个号码")["ticket_reference"]
        assert ref  # other numbers are not affected
        found = client.get("/api/v1/tickets", headers=sup, params={"phone": phone}).json()
        assert found["total"] == 1

    def test_a_blocked_number_is_stored_and_never_answered(self, client: TestClient) -> None:
        sup = login(client, "supervisor1")
        r = client.post("/api/v1/citizens/block", headers=sup, json={"phone": "13800139022"})
        assert r.status_code == 200 and r.json()["blocked"] is True
        out = text(client, "+8613800139022", "骚扰信息")
        assert out["reply"] is None and out["message_id"]
        agent = login(client, "agent1")
        assert client.post(
            "/api/v1/citizens/block", headers=agent, json={"phone": "1"}
        ).status_code in (403, 422)


class TestOddInput:
    def test_a_5000_character_text_is_kept_whole(self, client: TestClient) -> None:
        body = "路灯" * 2500
        out = text(client, "+8613800139030", body)
        t = ticket(client, out["ticket_reference"])
        assert len(t["description"]) == 4000 and t["description"].endswith("…")
        inbound = [m for m in t["messages"] if m["direction"] == "in"]
        assert len(inbound[0]["body"]) == 5000

    def test_invalid_utf8_and_emoji_do_not_break_anything(self, client: TestClient) -> None:
        raw = b"From=%2B8613800139031&Body=%E8%B7%AF%E7%81%AF%FF%FE+%F0%9F%94%A5"
        r = client.post(
            "/dev/sms", content=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["ticket_reference"]

    def test_missing_or_malformed_from_is_a_clear_422(self, client: TestClient) -> None:
        assert client.post("/dev/sms", data={"Body": "hi"}).json()["fields"]["From"]
        r = client.post("/dev/sms", data={"From": "not-a-phone", "Body": "hi"})
        assert r.status_code == 422 and r.json()["error"] == "invalid_input"


class TestOutboundRules:
    def test_a_long_reply_stays_within_two_segments_with_a_link(self, client: TestClient) -> None:
        phone = "+8613800139040"
        ref = text(client, phone, "小区电梯经常故障")["ticket_reference"]
        resolve(client, ref, "经查，" + "电梯维保单位已更换主板并完成检测，" * 10)
        sms = wait_for(lambda: sent_to(client, phone, "ticket_resolved"))[0]
        assert sms["segments"] <= 2 and len(sms["body"]) <= 134
        assert "/m/track?ref=" in sms["body"]

    def test_quiet_hours_hold_status_texts_until_morning(self, settings: Any) -> None:
        from datetime import datetime, timedelta

        from contact.app import create_app

        local = datetime.now(settings.tz)
        start = (local - timedelta(hours=1)).strftime("%H:%M")
        end = (local + timedelta(hours=2)).strftime("%H:%M")
        quiet = settings.model_copy(update={"QUIET_HOURS": f"{start}-{end}"})
        with TestClient(create_app(quiet)) as client:
            phone = "+8613800139041"
            ref = text(client, phone, "路灯不亮")["ticket_reference"]
            assert text(client, phone, "路灯不亮")["reply"]  # answers are never held
            resolve(client, ref)
            sup = login(client, "supervisor1")
            rows = client.get("/api/v1/outbox", headers=sup).json()
            held = [o for o in rows if o["template"] == "ticket_resolved"]
            assert held and held[0]["status"] == "pending"
            release = datetime.fromisoformat(held[0]["next_attempt_at"])
            assert release.astimezone(settings.tz).strftime("%H:%M") == end


@pytest.mark.slow
class TestConcurrentRetries:
    def test_one_sid_posted_20_times_at_once_is_one_message_and_one_ticket(
        self, settings: Any, tmp_path: Any
    ) -> None:
        from tests.test_crash import Server

        env = {
            "CONTACT_DATABASE_URL": settings.DATABASE_URL,
            "CONTACT_SECRET_KEY": settings.SECRET_KEY,
            "CONTACT_QUIET_HOURS": "",
            "CONTACT_LOG_LEVEL": "WARNING",
        }
        if settings.REDIS_URL:
            env["CONTACT_REDIS_URL"] = settings.REDIS_URL
        server = Server(env)
        server.start()
        try:
            form = {"From": "+8613800139050", "Body": "噪音扰民", "MessageSid": "SM" + "c" * 32}
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                results = list(
                    pool.map(
                        lambda _: httpx.post(f"{server.url}/dev/sms", data=form, timeout=30),
                        range(20),
                    )
                )
            assert all(r.status_code == 200 for r in results), [r.text for r in results]
            assert len({r.json()["message_id"] for r in results}) == 1
            assert len({r.json()["ticket_reference"] for r in results}) == 1
            token = httpx.post(
                f"{server.url}/api/v1/auth/token", data={"username": "agent1", "password": PASSWORD}
            ).json()["access_token"]
            found = httpx.get(
                f"{server.url}/api/v1/tickets",
                params={"phone": form["From"]},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            assert found["total"] == 1
            t = httpx.get(
                f"{server.url}/api/v1/tickets/{found['items'][0]['reference']}",
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            assert [m["direction"] for m in t["messages"]].count("in") == 1
        finally:
            server.kill()


class TestUnansweredTexts:
    def test_a_stored_text_that_no_job_heard_of_is_answered_by_the_sweep(
        self, isolated_settings: Any
    ) -> None:
        import asyncio
        from datetime import timedelta

        from sqlalchemy import select, update

        from channels.sms.inbound import store_inbound
        from channels.sms.jobs import sweep_inbound_async
        from contact.app import build_runtime
        from contact.channels import InboundMessage
        from contact.models import Channel, Message, Outbox, utcnow

        async def scenario() -> tuple[int, int, list[str]]:
            rt = build_runtime(isolated_settings)
            try:
                msg = InboundMessage(
                    Channel.sms, "twilio", "SM" + "e" * 32, "+8613800139060", "+1", "路灯不亮"
                )
                message_id, _ = await store_inbound(rt, msg)
                async with rt.db.session() as s:
                    # The process died before any job heard of it.
                    await s.execute(
                        update(Message)
                        .where(Message.id == message_id)
                        .values(created_at=utcnow() - timedelta(minutes=1))
                    )
                    await s.commit()
                first = await sweep_inbound_async(rt)
                second = await sweep_inbound_async(rt)
                async with rt.db.session() as s:
                    keys = list((await s.execute(select(Outbox.key))).scalars())
                return first, second, keys
            finally:
                await rt.db.dispose()

        first, second, keys = asyncio.run(scenario())
        assert (first, second) == (1, 0)
        assert [k for k in keys if k.startswith("reply:")] == [keys[-1]]
