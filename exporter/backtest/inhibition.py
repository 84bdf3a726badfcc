"""Alertmanager's `inhibit_rules` (alertmanager.yml, read as Alertmanager reads it).

A target alert is muted while a firing source alert matches the rule's source matchers and
has the same value (absent = empty) for every `equal` label. As in Alertmanager
(inhibit/inhibit.go): when the target alert also matches the source matchers, a source alert
that also matches the target matchers cannot mute it (no alert mutes itself or its peers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.errors import ConfigError

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """One label matcher (`name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`)."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the labels (absent = empty) match."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit


def parse_matcher(text: str, where: str, source: str) -> Matcher:
    """A matcher in Alertmanager's syntax; the value may be double-quoted."""
    match = _MATCHER.match(text)
    if match is None:
        raise ConfigError(f"not a matcher: {text!r}", path=where, source=source)
    name, op, value = match.groups()
    if value.startswith('"'):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"bad quoted value: {value}", path=where, source=source) from exc
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"bad regex: {exc}", path=where, source=source) from exc
    return Matcher(name, op, value)


@dataclass(frozen=True)
class InhibitRule:
    """One inhibit rule."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def is_source(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.source)

    def is_target(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.target)

    def mutes(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """Whether a firing `source` alert mutes the `target` alert under this rule."""
        if not self.is_target(target) or not self.is_source(source):
            return False
        if any(source.get(name, "") != target.get(name, "") for name in self.equal):
            return False
        return not (self.is_source(target) and self.is_target(source))


def _matchers(raw: dict[str, Any], side: str, where: str, source: str) -> tuple[Matcher, ...]:
    out = [
        parse_matcher(str(text), f"{where}.{side}_matchers[{i}]", source)
        for i, text in enumerate(raw.get(f"{side}_matchers") or [])
    ]
    for name, value in (raw.get(f"{side}_match") or {}).items():
        out.append(Matcher(str(name), "=", str(value)))
    for name, value in (raw.get(f"{side}_match_re") or {}).items():
        out.append(Matcher(str(name), "=~", str(value)))
    return tuple(out)


@dataclass(frozen=True)
class AlertmanagerConfig:
    """What the backtest needs of alertmanager.yml: inhibit rules and the root grouping."""

    inhibit_rules: tuple[InhibitRule, ...]
    group_by: tuple[str, ...]


def load_alertmanager(path: Path) -> AlertmanagerConfig:
    """Read the inhibit rules and the root route's `group_by`."""
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=source) from exc
    rules = []
    for index, raw in enumerate(document.get("inhibit_rules") or []):
        where = f"inhibit_rules[{index}]"
        rules.append(
            InhibitRule(
                source=_matchers(raw, "source", where, source),
                target=_matchers(raw, "target", where, source),
                equal=tuple(str(name) for name in raw.get("equal") or []),
            )
        )
    group_by = (document.get("route") or {}).get("group_by") or ["alertname"]
    return AlertmanagerConfig(tuple(rules), tuple(str(name) for name in group_by))


def muted_by(
    rules: tuple[InhibitRule, ...], source: Mapping[str, str], target: Mapping[str, str]
) -> bool:
    """Whether any rule lets the firing `source` alert mute `target`."""
    return any(rule.mutes(source, target) for rule in rules)
