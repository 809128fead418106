"""Tests for notifications.smtp against a real aiosmtpd server: retries, refusals, outages, reuse."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.mime import MailSpec, build_message
from notifications.smtp import (
    RETRY_WINDOW,
    DeliveryError,
    DeliveryResult,
    PermanentDeliveryError,
    SmtpConfig,
    SmtpSender,
    TemporaryDeliveryError,
    backoff_delay,
)
from tests.support.smtp_server import SmtpTestServer

# Registers the smtp_server fixture (harmless if tests/conftest.py lists it too).
pytest_plugins = ["tests.support.smtp_fixtures"]

T = TypeVar("T")
RECIPIENTS = ["maija@tampere.example", "pekka@pirkanmaa.example", "olematon@abo.example"]


def reminder(n: int = 0, to: list[str] | None = None) -> MailSpec:
    """A small reminder spec; `n` varies the key so every message has its own Message-ID."""
    return MailSpec(
        sender="Vuosikello <noreply@vuosikello.local>",
        to=to if to is not None else RECIPIENTS[:1],
        subject=f"Muistutus {n}: määräaika lähestyy",
        text=f"Viesti {n}.\n",
        html=f"<p>Viesti {n}.</p>",
        message_key=f"test:message={n}",
        list_id="case-1.vuosikello.local",
        domain="vuosikello.local",
    )


def run_with_sender(server: SmtpTestServer, scenario: Callable[[SmtpSender], Awaitable[T]]) -> T:
    """Run `scenario` with a fresh SmtpSender for `server` inside its own event loop."""

    async def main() -> T:
        config = SmtpConfig(server.hostname, server.port, local_hostname="localhost", timeout=5)
        async with SmtpSender(config) as sender:
            return await scenario(sender)

    return asyncio.run(main())


# -- transient failures and retries ------------------------------------------------------------------


def test_421_three_times_then_success(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.fail_next(421, "4.3.2 System not accepting messages", times=3)

    async def scenario(sender: SmtpSender) -> tuple[list[TemporaryDeliveryError], DeliveryResult]:
        errors: list[TemporaryDeliveryError] = []
        for _ in range(10):
            try:
                return errors, await sender.send(build_message(reminder()))
            except TemporaryDeliveryError as exc:
                errors.append(exc)
        raise AssertionError("never delivered")

    errors, result = run_with_sender(smtp_server, scenario)
    assert [e.code for e in errors] == [421, 421, 421]
    assert all("System not accepting messages" in str(e) for e in errors)
    assert result.accepted == RECIPIENTS[:1]
    assert len(smtp_server.messages) == 1


def test_4xx_on_mail_from_is_temporary_and_the_session_stays_usable(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.fail_next(451, "4.7.1 Greylisted", stage="MAIL")

    async def scenario(sender: SmtpSender) -> tuple[TemporaryDeliveryError, DeliveryResult, int]:
        with pytest.raises(TemporaryDeliveryError) as caught:
            await sender.send(build_message(reminder()))
        result = await sender.send(build_message(reminder()))
        return caught.value, result, sender.connections_opened

    error, result, connections = run_with_sender(smtp_server, scenario)
    assert error.code == 451
    assert result.accepted == RECIPIENTS[:1]
    assert connections == 1
    assert smtp_server.handler.session_count == 1


# -- permanent failures ----------------------------------------------------------------------------


def test_550_for_the_whole_message_is_permanent(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.fail_next(550, "5.7.1 Content rejected")

    async def scenario(sender: SmtpSender) -> tuple[PermanentDeliveryError, DeliveryResult]:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(build_message(reminder(1)))
        return caught.value, await sender.send(build_message(reminder(2)))

    error, _ = run_with_sender(smtp_server, scenario)
    assert error.code == 550
    assert "Content rejected" in error.message
    assert [m.message["Subject"] for m in smtp_server.messages] == ["Muistutus 2: määräaika lähestyy"]
    assert smtp_server.handler.session_count == 1  # RSET, not a reconnect, after a 5xx


def test_5xx_on_mail_from_is_permanent(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.fail_next(553, "5.7.1 Sender not allowed", stage="MAIL")

    async def scenario(sender: SmtpSender) -> None:
        await sender.send(build_message(reminder()))

    with pytest.raises(PermanentDeliveryError) as caught:
        run_with_sender(smtp_server, scenario)
    assert caught.value.code == 553
    assert smtp_server.messages == []


# -- recipient refusals -------------------------------------------------------------------------------


def test_one_of_three_recipients_refused(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.refuse_recipient("olematon@abo.example", 550)

    result = run_with_sender(smtp_server, lambda s: s.send(build_message(reminder(to=RECIPIENTS))))

    assert result.accepted == RECIPIENTS[:2]
    assert list(result.refused) == ["olematon@abo.example"]
    assert result.refused["olematon@abo.example"].startswith("550 ")
    assert result.temporarily_refused == []
    (received,) = smtp_server.messages
    assert received.rcpt_tos == RECIPIENTS[:2]
    assert received.message["To"].addresses[2].addr_spec == "olematon@abo.example"  # header unchanged


def test_partial_4xx_refusal_is_reported_for_retry(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.refuse_recipient("pekka@pirkanmaa.example", 452, "4.2.2 Mailbox full")

    result = run_with_sender(smtp_server, lambda s: s.send(build_message(reminder(to=RECIPIENTS))))

    assert result.accepted == [RECIPIENTS[0], RECIPIENTS[2]]
    assert result.refused == {"pekka@pirkanmaa.example": "452 4.2.2 Mailbox full"}
    assert result.temporarily_refused == ["pekka@pirkanmaa.example"]


def test_all_recipients_refused_with_5xx_is_permanent(smtp_server: SmtpTestServer) -> None:
    for rcpt in RECIPIENTS:
        smtp_server.handler.refuse_recipient(rcpt, 550)

    with pytest.raises(PermanentDeliveryError) as caught:
        run_with_sender(smtp_server, lambda s: s.send(build_message(reminder(to=RECIPIENTS))))
    assert caught.value.code == 550
    assert set(caught.value.refused) == set(RECIPIENTS)
    assert smtp_server.messages == []


def test_all_recipients_refused_with_any_4xx_is_temporary(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.refuse_recipient(RECIPIENTS[0], 550)
    smtp_server.handler.refuse_recipient(RECIPIENTS[1], 450)
    smtp_server.handler.refuse_recipient(RECIPIENTS[2], 550)

    with pytest.raises(TemporaryDeliveryError) as caught:
        run_with_sender(smtp_server, lambda s: s.send(build_message(reminder(to=RECIPIENTS))))
    assert caught.value.code == 450
    assert caught.value.refused[RECIPIENTS[1]].startswith("450 ")


# -- outages, reconnection and connection reuse -----------------------------------------------------------


def test_server_down_is_temporary_and_delivery_resumes_when_it_is_back(smtp_server: SmtpTestServer) -> None:
    async def scenario(sender: SmtpSender) -> tuple[TemporaryDeliveryError, DeliveryResult]:
        await sender.send(build_message(reminder(1)))
        smtp_server.stop()
        with pytest.raises(TemporaryDeliveryError) as caught:
            await sender.send(build_message(reminder(2)))
        smtp_server.start()
        return caught.value, await sender.send(build_message(reminder(2)))

    error, result = run_with_sender(smtp_server, scenario)
    assert error.code is None
    assert "refused" in str(error).lower() or "connect call failed" in str(error).lower()
    assert result.accepted == RECIPIENTS[:1]
    assert [m.message["Subject"] for m in smtp_server.messages] == [
        "Muistutus 1: määräaika lähestyy",
        "Muistutus 2: määräaika lähestyy",
    ]


def test_connection_refused_before_any_session(smtp_server: SmtpTestServer) -> None:
    smtp_server.stop()
    with pytest.raises(TemporaryDeliveryError) as caught:
        run_with_sender(smtp_server, lambda s: s.send(build_message(reminder())))
    assert caught.value.code is None


def test_stale_connection_is_replaced_transparently(smtp_server: SmtpTestServer) -> None:
    async def scenario(sender: SmtpSender) -> int:
        await sender.send(build_message(reminder(1)))
        smtp_server.stop()  # drops our idle session ...
        smtp_server.start()  # ... and is back before we send again
        await sender.send(build_message(reminder(2)))
        return sender.connections_opened

    assert run_with_sender(smtp_server, scenario) == 2
    assert len(smtp_server.messages) == 2


def test_one_connection_is_reused_for_50_messages(smtp_server: SmtpTestServer) -> None:
    async def scenario(sender: SmtpSender) -> int:
        for n in range(50):
            await sender.send(build_message(reminder(n)))
        return sender.connections_opened

    assert run_with_sender(smtp_server, scenario) == 1
    assert smtp_server.handler.session_count == 1
    assert len(smtp_server.messages) == 50
    assert {m.session for m in smtp_server.messages} == {1}
    assert len({m.message["Message-ID"] for m in smtp_server.messages}) == 50


def test_concurrent_sends_share_the_connection(smtp_server: SmtpTestServer) -> None:
    async def scenario(sender: SmtpSender) -> list[DeliveryResult]:
        return list(await asyncio.gather(*(sender.send(build_message(reminder(n))) for n in range(20))))

    results = run_with_sender(smtp_server, scenario)
    assert all(r.accepted == RECIPIENTS[:1] for r in results)
    assert len(smtp_server.messages) == 20
    assert smtp_server.handler.session_count == 1


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP listener that accepts connections but never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        yield "127.0.0.1", listener.getsockname()[1]


def test_timeout_is_temporary(silent_server: tuple[str, int]) -> None:
    host, port = silent_server

    async def scenario() -> None:
        async with SmtpSender(SmtpConfig(host, port, local_hostname="localhost", timeout=0.3)) as sender:
            await sender.send(build_message(reminder()))

    with pytest.raises(TemporaryDeliveryError) as caught:
        asyncio.run(scenario())
    assert caught.value.code is None


def test_message_without_recipients_is_permanent(smtp_server: SmtpTestServer) -> None:
    msg = build_message(reminder())
    del msg["To"]
    with pytest.raises(PermanentDeliveryError):
        run_with_sender(smtp_server, lambda s: s.send(msg))
    assert smtp_server.handler.session_count == 0


def test_errors_share_a_base_class() -> None:
    assert issubclass(TemporaryDeliveryError, DeliveryError)
    assert issubclass(PermanentDeliveryError, DeliveryError)
    error = TemporaryDeliveryError("try later", code=451)
    assert (error.code, error.message, error.refused) == (451, "try later", {})


def test_config_rejects_implicit_tls_with_starttls() -> None:
    with pytest.raises(ValueError):
        SmtpConfig("smtp.example", 465, use_tls=True, start_tls=True)
    assert "hunter2" not in repr(SmtpConfig("smtp.example", 587, username="u", password="hunter2"))


# -- backoff ---------------------------------------------------------------------------------------------


def test_backoff_bounds() -> None:
    assert backoff_delay(0, rng=lambda: 1.0) == 30.0
    assert backoff_delay(3, rng=lambda: 1.0) == 240.0
    assert backoff_delay(7, rng=lambda: 1.0) == 3600.0  # 30 * 128 = 3840, capped
    assert backoff_delay(10_000, rng=lambda: 1.0) == 3600.0  # no OverflowError
    assert backoff_delay(5, rng=lambda: 0.0) == 0.0
    assert backoff_delay(2, base=1.0, cap=10.0, rng=lambda: 0.5) == 2.0
    with pytest.raises(ValueError):
        backoff_delay(-1)


@given(st.integers(min_value=0, max_value=5000))
def test_backoff_with_real_jitter_stays_within_the_ceiling(attempt: int) -> None:
    delay = backoff_delay(attempt)
    assert 0.0 <= delay <= min(3600.0, 30.0 * 2.0 ** min(attempt, 64))


def test_retry_window_is_a_day() -> None:
    assert RETRY_WINDOW == timedelta(hours=24)
