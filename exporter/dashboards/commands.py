"""The `smswatch dashboards …` sub-commands; the CLI wires their flags to these functions.

Imports of the generator and of the Grafana client are deferred so that other sub-commands do
not pay for grafana-foundation-sdk at start-up.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

from exporter.errors import ConfigError, SmswatchError

TOKEN_ENV = "GRAFANA_TOKEN"


def generate_command(args: argparse.Namespace) -> int:
    """Write every dashboard to `--output-dir` (English) and `--output-dir`/zh-CN (Simplified
    Chinese), or only the `--lang` given; with `--check` fail when they drifted."""
    from exporter.dashboards.generate import BUILDERS, drifted, subdirectory, write
    from exporter.vocabulary import LANGUAGES

    stale: list[str] = []
    for lang in [args.lang] if args.lang else LANGUAGES:
        directory = Path(args.output_dir) / subdirectory(lang)
        if not args.check:
            for path in write(directory, lang):
                print(f"wrote {path}")
            continue
        found = drifted(directory, lang)
        stale.extend(str(directory / name) for name in found)
        if not found:
            print(f"{directory}: {len(BUILDERS)} dashboards up to date")
    if stale:
        raise SmswatchError(
            f"out of date: {', '.join(stale)} "
            "(run `smswatch dashboards generate` and commit the result)"
        )
    return 0


def read_token(token_file: str | None, environ: Mapping[str, str]) -> str:
    """The Grafana token: from `--grafana.token-file` when given, else from GRAFANA_TOKEN."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path="--grafana.token-file") from exc
        if not token:
            raise ConfigError(f"{token_file} is empty", path="--grafana.token-file")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"no Grafana token: set {TOKEN_ENV} or pass --grafana.token-file")
    return token


def push_command(args: argparse.Namespace) -> int:
    """Upload every dashboard to the Grafana at `--grafana.url`."""
    from exporter.dashboards.generate import dashboards
    from exporter.dashboards.grafana import Grafana, push
    from exporter.timestamps import parse_duration_ms

    if not args.grafana_url.startswith(("http://", "https://")):
        raise ConfigError(f"not an http(s) URL: {args.grafana_url!r}", path="--grafana.url")
    try:
        timeout_ms = parse_duration_ms(args.grafana_timeout)
    except ValueError as exc:
        raise ConfigError(str(exc), path="--grafana.timeout") from exc
    if timeout_ms <= 0:
        raise ConfigError("must be > 0", path="--grafana.timeout")
    token = read_token(args.grafana_token_file, os.environ)
    grafana = Grafana(args.grafana_url, token, timeout=timeout_ms / 1000)
    push(grafana, dashboards(args.lang), prometheus_url=args.prometheus_url, force=args.force)
    return 0
