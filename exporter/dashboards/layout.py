"""What every smswatch dashboard has in common: variables, annotations, links, ids, JSON.

`new_dashboard` starts a dashboard with the standard header; `finish` lays out its sections,
builds it and numbers the panels in reading order, so ids are stable as long as the layout is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from exporter.dashboards import RUNBOOKS_URL, TAG
from exporter.dashboards import panels as p
from exporter.dashboards.queries import SMS_SUBMITTED, TRANSACTIONS
from exporter.language import current_language, localized_uid

#: The alerts shown as annotations: every firing alert but the always-firing Watchdog.
FIRING_ALERTS = 'ALERTS{alertstate="firing", alertname!="Watchdog"}'


def standard_variables() -> list[dashboard_builder.QueryVariable]:
    """gateway, carrier, area and acquirer: multi-value, with All."""
    return [
        p.label_variable(
            "gateway", "Gateway", SMS_SUBMITTED, "The bank SMS platform(s) sending the messages."
        ),
        p.label_variable(
            "carrier",
            "Carrier",
            SMS_SUBMITTED,
            "Mobile carriers delivering the messages.",
            matchers='gateway=~"$gateway"',
        ),
        p.label_variable(
            "area",
            "Area",
            SMS_SUBMITTED,
            "Geographic areas of the cardholders' phones.",
            matchers='gateway=~"$gateway", carrier=~"$carrier"',
        ),
        p.label_variable(
            "acquirer",
            "Acquirer",
            TRANSACTIONS,
            "Card acquirers whose POS terminals printed the receipts.",
        ),
    ]


def new_dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    time_from: str,
    refresh: str,
    extra_variables: tuple[dashboard_builder.QueryVariable, ...] = (),
) -> dashboard_builder.Dashboard:
    """A dashboard with the smswatch tag, the datasource and label variables, the alert
    annotations and links to the other smswatch dashboards and to the runbooks, in the language
    being generated (its uid, language tag and runbooks follow it)."""
    lang = current_language()
    dashboard = (
        dashboard_builder.Dashboard(title)
        .uid(localized_uid(uid, lang))
        .description(description)
        .tags([TAG, "sms", "pos", lang])
        .readonly()
        .timezone("browser")
        .time(time_from, "now")
        .refresh(refresh)
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .with_variable(p.datasource_variable())
    )
    for variable in (*standard_variables(), *extra_variables):
        dashboard.with_variable(variable)
    dashboard.with_variable(
        p.constant_variable(
            "runbooks",
            RUNBOOKS_URL if lang == "en" else f"{RUNBOOKS_URL}/{lang}",
            "Base URL of the runbooks: an alert's runbook is ${runbooks}/<AlertName>.md.",
        )
    )
    return (
        dashboard.annotation(p.AlertsAnnotation(FIRING_ALERTS))
        .link(p.dashboards_link())
        .link(p.url_link("Runbooks", "${runbooks}", "What to do for each alert"))
    )


def finish(
    dashboard: dashboard_builder.Dashboard,
    sections: Iterable[tuple[str, Iterable[p.PanelBuilder]]],
) -> dashboard_model.Dashboard:
    """Lay out the (title, panels) sections, a row each, then build the dashboard and number
    its panels 1, 2, … in reading order."""
    for title, panels in sections:
        dashboard.with_row(p.row(title))
        for builder in panels:
            dashboard.with_panel(builder)
    model = dashboard.build()
    next_id = 1
    for panel in model.panels or []:
        panel.id_val = next_id
        next_id += 1
        if isinstance(panel, dashboard_model.RowPanel):
            for inner in panel.panels:
                inner.id_val = next_id
                next_id += 1
    return model


def to_json(model: dashboard_model.Dashboard) -> str:
    """The dashboard as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
