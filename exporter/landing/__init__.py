"""The exporter's landing page at `/`: what a person reads first, from committed state.

Per gateway and acquirer the SLIs of the last hour and of today against their objectives,
receipts without SMS by cause in plain words, the sources' health, provider codes no table
knows, and (with a Prometheus configured) the alerts firing now with their runbooks; in English
and Simplified Chinese. `figures` gathers, `page` renders, `words` holds the texts, `route`
answers the request.
"""

from exporter.landing.route import LandingPage

__all__ = ["LandingPage"]
