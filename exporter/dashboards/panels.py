"""Building blocks shared by the three dashboards, on top of grafana-foundation-sdk.

Every panel made here queries the `${datasource}` variable, carries a title, a description and a
unit, and gets its targets' refIds assigned in order: the rules the dashboard lint tests enforce
are easiest to keep when there is only one way to make a panel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import heatmap as heatmap_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import text as text_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_model
from grafana_foundation_sdk.models import heatmap as heatmap_model
from grafana_foundation_sdk.models import prometheus as prometheus_model
from grafana_foundation_sdk.models import text as text_model

from exporter.dashboards import TAG
from exporter.dashboards.causes import cause_titles, delivered_title
from exporter.dashboards.objectives import warning_level
from exporter.language import current_language

Query = prometheus_builder.Dataquery
PanelBuilder = cogbuilder.Builder[dashboard_model.Panel]
Override = cogbuilder.Builder[dashboard_model.DashboardFieldConfigSourceOverrides]

#: The only datasource reference a dashboard may contain.
DATASOURCE_UID = "${datasource}"

#: Matchers of the dashboard variables, one string per label family.
SMS_MATCHERS = 'gateway=~"$gateway", carrier=~"$carrier", area=~"$area"'
ACQUIRER_MATCHERS = 'acquirer=~"$acquirer"'

#: The window of every rate in a time series panel (Grafana's dashboard-linter rule).
RATE_WINDOW = "$__rate_interval"
#: The window of instant "over the selected period" figures.
RANGE_WINDOW = "$__range"

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


def datasource() -> dashboard_model.DataSourceRef:
    """A reference to the dashboard's `datasource` variable."""
    return dashboard_model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)


def query(
    expr: str, legend: str = "__auto", *, instant: bool = False, fmt: str = "time_series"
) -> Query:
    """One PromQL target; `instant` for figures over a window, `fmt` table or heatmap."""
    target = (
        prometheus_builder.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .datasource(datasource())
        .editor_mode(prometheus_model.QueryEditorMode.CODE)
        .format(prometheus_model.PromQueryFormat(fmt))
    )
    return target.instant() if instant else target.range()


class _Panel(Protocol):
    """What every SDK panel builder offers (they share no base class)."""

    def title(self, title: str, /) -> Self: ...

    def description(self, description: str, /) -> Self: ...

    def span(self, w: int, /) -> Self: ...

    def height(self, h: int, /) -> Self: ...

    def min(self, min_val: float, /) -> Self: ...

    def max(self, max_val: float, /) -> Self: ...


class _QueryPanel(_Panel, Protocol):
    """What every SDK panel builder with targets offers besides."""

    def datasource(self, datasource: dashboard_model.DataSourceRef) -> Self: ...

    def with_target(self, target: cogbuilder.Builder[cogvariants.Dataquery]) -> Self: ...


F = TypeVar("F", bound=_Panel)
P = TypeVar("P", bound=_QueryPanel)


def _framed(panel: F, title: str, description: str, span: int, height: int) -> F:
    """What every panel has: a title, a description and its size."""
    return panel.title(title).description(description).span(span).height(height)


def _value_range(panel: F, min_value: float | None, max_value: float | None) -> F:
    """The lowest and highest value shown, where they are given."""
    if min_value is not None:
        panel.min(min_value)
    if max_value is not None:
        panel.max(max_value)
    return panel


def _last_value() -> common_builder.ReduceDataOptions:
    """One value per series, its last non-null one: for big numbers and bars."""
    return common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _with_targets(panel: P, targets: Sequence[Query]) -> P:
    panel.datasource(datasource())
    for index, target in enumerate(targets):
        panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


# -- thresholds ---------------------------------------------------------------------------------


def _steps(*steps: tuple[float | None, str]) -> dashboard_builder.ThresholdsConfig:
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_model.Threshold(value=value, color=color) for value, color in steps])
    )


def objective_thresholds(objective: float) -> dashboard_builder.ThresholdsConfig:
    """Green at or above the objective, orange while burning budget < 2x, red below."""
    return _steps((None, RED), (warning_level(objective), ORANGE), (objective, GREEN))


def ceiling_thresholds(warning: float, critical: float) -> dashboard_builder.ThresholdsConfig:
    """Green below `warning`, orange from it, red from `critical` (ages, lags, counts)."""
    return _steps((None, GREEN), (warning, ORANGE), (critical, RED))


def budget_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Remaining error budget: red when spent, orange under a quarter, green otherwise."""
    return _steps((None, RED), (0, ORANGE), (0.25, GREEN))


def up_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Red below 1, green at 1: for up/down gauges."""
    return _steps((None, RED), (1, GREEN))


def presence_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Green at zero, orange from one: for things that should not exist at all."""
    return _steps((None, GREEN), (1, ORANGE))


def up_down_mappings() -> list[dashboard_model.ValueMapping]:
    """1 shows as a green "Up", 0 as a red "Down"."""
    return [
        dashboard_model.ValueMap(
            options={
                "0": dashboard_model.ValueMappingResult(text="Down", color=RED, index=0),
                "1": dashboard_model.ValueMappingResult(text="Up", color=GREEN, index=1),
            }
        )
    ]


def hide_columns(*names: str) -> dashboard_model.DataTransformerConfig:
    """A table transformation that hides columns such as Time and Value."""
    return dashboard_model.DataTransformerConfig(
        id_val="organize", options={"excludeByName": dict.fromkeys(names, True)}
    )


def neutral_thresholds() -> dashboard_builder.ThresholdsConfig:
    """For volumes, where no value is good or bad."""
    return _steps((None, BLUE))


# -- overrides ----------------------------------------------------------------------------------


def _display_name(name: str, title: str) -> Override:
    return (
        dashboard_builder.DashboardFieldConfigSourceOverrides()
        .matcher(dashboard_model.MatcherConfig(id_val="byName", options=name))
        .properties([dashboard_model.DynamicConfigValue(id_val="displayName", value=title)])
    )


def cause_overrides() -> list[Override]:
    """Rename series whose legend is a cause label to the cause's name in the vocabulary."""
    renames = [_display_name(label, title) for label, title in cause_titles().items()]
    renames.append(_display_name("none", delivered_title()))
    return list(renames)


def _literal(text: str) -> str:
    """`text` as a regular expression matching itself in Python and JavaScript alike."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", text)


def cause_renames(before: str, after: str) -> list[dashboard_model.DataTransformerConfig]:
    """Grafana `renameByRegex` transformations that show, in series names where the cause label
    sits between `before` and `after` (legend `{{status}}: {{cause}}` → `": "`, `""`), the
    cause's name in the vocabulary instead of its label value."""
    return [
        dashboard_model.DataTransformerConfig(
            id_val="renameByRegex",
            options={
                "regex": f"^(.*){_literal(before)}{label}{_literal(after)}$",
                "renamePattern": f"$1{before}{title}{after}",
            },
        )
        for label, title in cause_titles().items()
    ]


def runbook_link_override(field: str) -> Override:
    """A data link on `field` (an alert name) to its runbook, `${runbooks}/<AlertName>.md`."""
    link = {
        "title": "Runbook for ${__value.text}",
        "url": "${runbooks}/${__value.text}.md",
        "targetBlank": True,
    }
    return (
        dashboard_builder.DashboardFieldConfigSourceOverrides()
        .matcher(dashboard_model.MatcherConfig(id_val="byName", options=field))
        .properties([dashboard_model.DynamicConfigValue(id_val="links", value=[link])])
    )


# -- panels -------------------------------------------------------------------------------------


def stat(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    thresholds: dashboard_builder.ThresholdsConfig | None = None,
    sparkline: bool = False,
    decimals: int | None = None,
    mappings: Sequence[dashboard_model.ValueMapping] = (),
    span: int = 4,
    height: int = 5,
) -> stat_builder.Panel:
    """A big number (last value of each series), coloured by its thresholds."""
    panel = (
        _framed(stat_builder.Panel(), title, description, span, height)
        .unit(unit)
        .thresholds(thresholds or neutral_thresholds())
        .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(_last_value())
    )
    if decimals is not None:
        panel.decimals(decimals)
    if mappings:
        panel.mappings(list(mappings))
    return _with_targets(panel, targets)


def timeseries(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    thresholds: dashboard_builder.ThresholdsConfig | None = None,
    stacked: bool = False,
    bars: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
    overrides: Iterable[Override] = (),
    span: int = 12,
    height: int = 8,
) -> timeseries_builder.Panel:
    """A graph over time; thresholds are drawn as dashed lines (e.g. the objective)."""
    panel = (
        _framed(timeseries_builder.Panel(), title, description, span, height)
        .unit(unit)
        .line_width(1)
        .fill_opacity(40 if stacked or bars else 10)
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["mean", "lastNotNull"])
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )
    if stacked:
        panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    if thresholds is not None:
        panel.thresholds(thresholds).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    _value_range(panel, min_value, max_value).overrides(list(overrides))
    return _with_targets(panel, targets)


def per_minute_breakdown(
    title: str,
    description: str,
    expr: str,
    label: str,
    *,
    overrides: Iterable[Override] = (),
    span: int = 12,
) -> timeseries_builder.Panel:
    """Events per minute over time as stacked bars, one per value of `label` (`expr` sums by
    it): how a volume splits, e.g. receipts without SMS by cause."""
    return timeseries(
        title,
        description,
        "cpm",
        [query(expr, f"{{{{{label}}}}}")],
        stacked=True,
        bars=True,
        min_value=0,
        overrides=overrides,
        span=span,
    )


def bars(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    thresholds: dashboard_builder.ThresholdsConfig | None = None,
    overrides: Iterable[Override] = (),
    min_value: float | None = None,
    max_value: float | None = None,
    span: int = 8,
    height: int = 8,
) -> bargauge_builder.Panel:
    """Horizontal bars, one per series: rankings (worst first) and breakdowns."""
    panel = (
        _framed(bargauge_builder.Panel(), title, description, span, height)
        .unit(unit)
        .thresholds(thresholds or neutral_thresholds())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .show_unfilled(True)
        .reduce_options(_last_value())
    )
    _value_range(panel, min_value, max_value).overrides(list(overrides))
    return _with_targets(panel, targets)


def heatmap(
    title: str, description: str, unit: str, target: Query, *, span: int = 12, height: int = 8
) -> heatmap_builder.Panel:
    """A latency heatmap straight from histogram buckets (`format: heatmap`, no recalculation)."""
    panel = (
        _framed(heatmap_builder.Panel(), title, description, span, height)
        .unit(unit)
        .calculate(False)
        .y_axis(heatmap_builder.YAxisConfig().unit(unit))
        .color(
            heatmap_builder.HeatmapColorOptions()
            .mode(heatmap_model.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(heatmap_model.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .fill("dark-orange")
        )
        .rows_frame(heatmap_builder.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .cell_values(heatmap_builder.CellValues().unit("short"))
        .show_value(common.VisibilityMode.NEVER)
    )
    return _with_targets(panel, [target])


def table(
    title: str,
    description: str,
    unit: str,
    targets: Sequence[Query],
    *,
    overrides: Iterable[Override] = (),
    transformations: Sequence[dashboard_model.DataTransformerConfig] = (),
    span: int = 12,
    height: int = 8,
) -> table_builder.Panel:
    """A table of instant results (one row per series)."""
    panel = (
        _framed(table_builder.Panel(), title, description, span, height)
        .unit(unit)
        .thresholds(neutral_thresholds())
    )
    for transformation in transformations:
        panel.with_transformation(transformation)
    panel.overrides(list(overrides))
    return _with_targets(panel, targets)


def text(
    title: str, description: str, content: str, *, span: int = 24, height: int = 8
) -> text_builder.Panel:
    """A Markdown panel: explanations for readers who do not read PromQL."""
    return (
        _framed(text_builder.Panel(), title, description, span, height)
        .mode(text_model.TextMode.MARKDOWN)
        .content(content)
    )


def row(title: str) -> dashboard_builder.Row:
    """A section header."""
    return dashboard_builder.Row(title)


# -- variables, annotations, links --------------------------------------------------------------


def datasource_variable() -> dashboard_builder.DatasourceVariable:
    """`$datasource`: any Prometheus datasource; nothing in a dashboard names one directly."""
    return (
        dashboard_builder.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .description("The Prometheus that scrapes the smswatch exporter.")
    )


def label_variable(
    name: str, label: str, metric: str, description: str, matchers: str = ""
) -> dashboard_builder.QueryVariable:
    """A multi-value variable over one label's values, with `All` meaning the regex `.*`."""
    series = f"{metric}{{{matchers}}}" if matchers else metric
    return (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(datasource())
        .query(f"label_values({series}, {name})")
        .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dashboard_model.VariableOption(selected=True, text="All", value="$__all"))
    )


def constant_variable(
    name: str, value: str, description: str
) -> dashboard_builder.ConstantVariable:
    """A hidden constant, e.g. the base URL of the runbooks."""
    return dashboard_builder.ConstantVariable(name).value(value).description(description)


class _PrometheusAnnotationQuery(dashboard_model.AnnotationQuery):
    """An annotation query with the Prometheus-specific fields the SDK model does not carry."""

    def __init__(
        self, *, title_format: str, text_format: str, tag_keys: str, step: str, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title_format = title_format
        self.text_format = text_format
        self.tag_keys = tag_keys
        self.step = step

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload.update(
            titleFormat=self.title_format,
            textFormat=self.text_format,
            tagKeys=self.tag_keys,
            step=self.step,
            useValueForTime=False,
        )
        return payload


class AlertsAnnotation(cogbuilder.Builder[dashboard_model.AnnotationQuery]):
    """Firing alerts (the `ALERTS` series) as annotations on every time series panel."""

    def __init__(self, expr: str) -> None:
        self._expr = expr

    def build(self) -> dashboard_model.AnnotationQuery:
        return _PrometheusAnnotationQuery(
            name="Firing alerts",
            datasource=datasource(),
            enable=True,
            hide=False,
            icon_color=RED,
            expr=self._expr,
            title_format="{{alertname}}",
            text_format="{{alertname}} ({{severity}})",
            tag_keys="alertname,severity,cause,gateway,acquirer,carrier,area,source",
            step="1m",
        )


def dashboards_link() -> dashboard_builder.DashboardLink:
    """A drop-down to the other smswatch dashboards in the same language, keeping time range
    and variables."""
    return (
        dashboard_builder.DashboardLink("SMS dashboards")
        .type(dashboard_model.DashboardLinkType.DASHBOARDS)
        .tags([TAG, current_language()])
        .as_dropdown(True)
        .keep_time(True)
        .include_vars(True)
        .target_blank(False)
    )


def url_link(title: str, url: str, tooltip: str) -> dashboard_builder.DashboardLink:
    """A plain link in the dashboard's header."""
    return (
        dashboard_builder.DashboardLink(title)
        .type(dashboard_model.DashboardLinkType.LINK)
        .url(url)
        .tooltip(tooltip)
        .icon("doc")
        .target_blank(True)
    )
