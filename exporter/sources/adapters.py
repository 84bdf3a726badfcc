"""Which adapter reads which provider: the one registry of pull adapters."""

from __future__ import annotations

from typing import Any

from exporter.config import SourceConfig

#: Providers whose pull consumes what it reads (Tencent PullSmsSendStatus): each page is
#: committed durably (synchronous=FULL) before the next request, which acknowledges it.
CONSUMING_PROVIDERS: frozenset[str] = frozenset({"tencent"})


def puller(source: SourceConfig) -> Any:
    """The pull adapter of a source, or None for the generic feed (the poller's own loop)."""
    if source.provider == "generic":
        return None
    if source.provider == "twilio":
        from exporter.sources.twilio import TwilioPuller

        return TwilioPuller(source)
    if source.provider == "aliyun":
        from exporter.sources.aliyun import AliyunPuller

        return AliyunPuller(source)
    if source.provider == "tencent":
        from exporter.sources.tencent import TencentPuller

        return TencentPuller(source)
    if source.provider == "vonage":
        from exporter.sources.vonage import VonagePuller

        return VonagePuller(source)
    if source.provider == "stripe":
        from exporter.sources.stripe import StripePuller

        return StripePuller(source)
    if source.provider == "square":
        from exporter.sources.square import SquarePuller

        return SquarePuller(source)
    raise ValueError(f"provider {source.provider} cannot be pulled")
