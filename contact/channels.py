"""The port between the core and the channel adapters (SMS, voice, ...).

The core knows tickets and nothing about Twilio; adapters know their wire
format and nothing about workflow. The composition root registers adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from contact.models import Channel


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    provider: str  # "twilio", "dev"
    provider_id: str  # MessageSid / CallSid: the idempotency key
    from_addr: str
    to_addr: str
    body: str
    media: tuple[Media, ...] = ()
    received_at: datetime | None = None


@dataclass(frozen=True)
class OutboundMessage:
    key: str  # idempotency key (outbox key): a provider call is made once per key
    channel: Channel
    to: str
    body: str
    template: str | None = None
    status_callback: str | None = None


@dataclass(frozen=True)
class DeliveryReceipt:
    provider: str
    provider_id: str
    status: str  # queued | sent | delivered | failed
    segments: int = 1
    error: str | None = None


class DeliveryError(Exception):
    """The provider refused or could not be reached; ``permanent`` stops retries."""

    def __init__(self, message: str, *, permanent: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


@runtime_checkable
class ChannelAdapter(Protocol):
    channel: Channel
    provider: str
    max_length: int

    async def send(self, message: OutboundMessage) -> DeliveryReceipt: ...


def one_part(text: str) -> int:
    return 1


@dataclass
class AdapterRegistry:
    adapters: dict[Channel, ChannelAdapter] = field(default_factory=dict)
    # How many parts a text takes on a channel (SMS segments); one part where unset.
    measures: dict[Channel, Callable[[str], int]] = field(default_factory=dict)

    def register(self, adapter: ChannelAdapter) -> None:
        self.adapters[adapter.channel] = adapter

    def register_measure(self, channel: Channel, measure: Callable[[str], int]) -> None:
        self.measures[channel] = measure

    def parts(self, channel: Channel, text: str) -> int:
        return self.measures.get(channel, one_part)(text)

    def get(self, channel: Channel) -> ChannelAdapter:
        try:
            return self.adapters[channel]
        except KeyError:
            raise DeliveryError(f"no adapter for channel {channel.value}", permanent=True) from None
