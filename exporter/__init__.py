"""smswatch: monitoring for card-transaction SMS (POS receipt printed, cardholder SMS missing)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smswatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
