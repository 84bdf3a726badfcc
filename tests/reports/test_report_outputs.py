"""The written report: files and manifest, CSVs that match the PDF, PDF text in both languages,
pages that render, and Chinese text drawn with real glyphs."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import subprocess
import warnings
from pathlib import Path

import pytest
import report_dataset as ds
from pdf_glyphs import notdef_glyphs
from report_harness import GENERATED_AT, LoadedPrometheus

from exporter.reports import charts
from exporter.reports.figures import gather
from exporter.reports.objectives import DEFAULT_OBJECTIVES
from exporter.reports.periods import load_zone, resolve_period
from exporter.reports.prometheus import PrometheusClient
from exporter.reports.render import render_pdf
from exporter.reports.texts import CATALOGUES, Texts

CSV_FILES = (
    "coverage",
    "delivery_acquirer",
    "delivery_gateway",
    "delivery_carrier",
    "latency_receipts",
    "latency_sms",
    "latency_buckets",
    "causes",
    "incidents",
    "incident_totals",
    "terminals",
    "completeness",
    "gaps",
    "buckets",
)
#: Tables drawn as charts in the PDF (their numbers are in the chart, not in the text).
CHART_DATA = ("latency_buckets", "buckets")
NAMES = {"en": "smswatch-daily-2026-03-10-en", "zh-CN": "smswatch-daily-2026-03-10-zh-CN"}


def read_csv(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def pdf_text(directory: Path, *options: str) -> str:
    pdf = directory / f"{directory.name}.pdf"
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *options, str(pdf), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_a_report_is_one_directory_with_a_manifest(reports: dict[str, Path]) -> None:
    for lang, directory in reports.items():
        assert directory.name == NAMES[lang]
        names = {p.name for p in directory.iterdir()}
        assert names == {
            *(f"{n}.csv" for n in CSV_FILES),
            f"{NAMES[lang]}.pdf",
            f"{NAMES[lang]}.html",
            "manifest.json",
            "SHA256SUMS",
        }
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["report_id"] == "daily-2026-03-10"
        assert manifest["period"] == {
            "kind": "daily",
            "start": "2026-03-10T00:00:00+08:00",
            "end": "2026-03-11T00:00:00+08:00",
            "timezone": "Asia/Shanghai",
        }
        assert manifest["generated_at"] == GENERATED_AT.isoformat()
        assert manifest["data_complete"] is False
        for name, entry in manifest["files"].items():
            content = (directory / name).read_bytes()
            assert entry == {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
        check = subprocess.run(
            ["sha256sum", "-c", "SHA256SUMS"], cwd=directory, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert len(check.stdout.splitlines()) == len(names) - 1
    # Nothing else (no temporary directory) is left beside the reports.
    assert {p.name for p in next(iter(reports.values())).parent.iterdir()} == set(NAMES.values())


def test_the_csv_files_hold_the_exact_figures(
    reports: dict[str, Path], dataset: ds.Dataset
) -> None:
    directory = reports["en"]
    coverage = {row["item"]: row["value"] for row in read_csv(directory, "coverage")}
    outcomes = dataset.by("smswatch_receipts_total", "outcome")
    receipts = sum(outcomes.values())
    assert coverage["approved"] == str(
        dataset.by("smswatch_pos_transactions_total", "result")["approved"]
    )
    assert coverage["receipts"] == str(receipts)
    assert coverage["receipts_missing"] == str(outcomes["missing"])
    truncated = (receipts - outcomes["missing"]) * 10_000 // receipts
    assert coverage["coverage"] == f"{truncated // 100}.{truncated % 100:02d}"

    gateways = {row["gateway"]: row for row in read_csv(directory, "delivery_gateway")}
    for gateway in ds.GATEWAYS:
        statuses = dataset.by(
            "smswatch_sms_messages_total", "status", where=lambda m, g=gateway: m["gateway"] == g
        )
        row = gateways[gateway]
        assert row["messages"] == str(sum(statuses.values()))
        for status, count in statuses.items():
            assert row[status] == str(count)
        assert row["objective_pct"] == "99.50"
    # The objective judges the bank-side SLI, not the overall rate: bank-b meets it.
    assert (gateways["bank-a"]["meets_objective"], gateways["bank-b"]["meets_objective"]) == (
        "no",
        "yes",
    )

    latency = {row["acquirer"]: row for row in read_csv(directory, "latency_receipts")}
    buckets = dict(dataset.buckets("smswatch_receipt_notify_seconds"))
    assert latency["*"]["notified"] == str(buckets[float("inf")])
    assert latency["*"]["within_60s"] == str(buckets[60.0])

    incidents = {row["alert"]: row for row in read_csv(directory, "incidents")}
    assert incidents["SMSGatewayOutage"]["duration"] == "0:45:00"
    assert incidents["SMSGatewayOutage"]["start"] == "2026-03-10T10:00:00+08:00"
    assert incidents["SMSGatewayOutage"]["end"] == "2026-03-10T10:45:00+08:00"
    assert incidents["POSTerminalsNotNotifying"]["note"] == "ongoing"
    assert incidents["SmswatchExporterDown"]["note"] == "before"

    gaps = read_csv(directory, "gaps")
    assert {
        "kind": "source",
        "name": "sms",
        "reason": "down",
        "start": "2026-03-10T15:00:00+08:00",
        "end": "2026-03-10T15:30:00+08:00",
        "duration": "0:30:00",
    } in gaps

    per_hour = read_csv(directory, "buckets")
    assert len(per_hour) == 24
    assert sum(int(row["receipts"]) for row in per_hour) == receipts


def _truncated_pct(numerator: int, denominator: int) -> str:
    hundredths = numerator * 10_000 // denominator
    return f"{hundredths // 100}.{hundredths % 100:02d}"


@pytest.mark.parametrize(
    ("name", "metric", "by", "objective"),
    [
        ("delivery_acquirer", "smswatch_receipts_total", "acquirer", "97.50"),
        ("delivery_gateway", "smswatch_sms_messages_total", "gateway", "99.50"),
        ("delivery_carrier", "smswatch_sms_messages_total", "carrier", "99.50"),
    ],
)
def test_the_delivery_csv_judges_the_bank_side_sli(
    reports: dict[str, Path], dataset: ds.Dataset, name: str, metric: str, by: str, objective: str
) -> None:
    rows = {row[by]: row for row in read_csv(reports["en"], name)}
    for key, row in rows.items():
        where = ds.everywhere if key == "*" else (lambda m, key=key: m[by] == key)
        total, cardholder, events, bad = dataset.sli(metric, where)
        delivered = dataset.by(metric, "cause", where=where).get("none", 0)
        assert row["success_pct"] == _truncated_pct(delivered, total), key
        assert row["cardholder_side"] == str(cardholder), key
        assert row["cardholder_side_pct"] == _truncated_pct(cardholder, total), key
        assert row["sli_events"] == str(events), key
        assert row["bank_side"] == str(bad), key
        assert row["sli_pct"] == _truncated_pct(events - bad, events), key
        assert row["objective_pct"] == objective, key
        met = (events - bad) * 10_000 >= events * round(float(objective) * 100)
        assert row["meets_objective"] == ("yes" if met else "no"), key


def test_healthy_traffic_is_reported_as_meeting_the_objective(reports: dict[str, Path]) -> None:
    """1 % cardholder-side failures: overall rate below 99.5 %, objective met, in the CSV
    and in the PDF of both languages."""
    for name, by, key in (
        ("delivery_gateway", "gateway", ds.HEALTHY_GATEWAY),
        ("delivery_acquirer", "acquirer", ds.HEALTHY_ACQUIRER),
    ):
        row = next(r for r in read_csv(reports["en"], name) if r[by] == key)
        assert float(row["success_pct"]) < 99.5 <= float(row["sli_pct"])
        assert row["meets_objective"] == "yes"
        for lang, met in (("en", "met"), ("zh-CN", "达标")):
            # The row of the SLI part of the table: overall rate, …, SLI, objective, verdict.
            (line,) = (
                line
                for line in pdf_text(reports[lang], "-layout").splitlines()
                if line.split()[:1] == [key] and row["sli_pct"] in line
            )
            assert line.split()[:2] == [key, row["success_pct"]], (lang, line)
            assert line.split()[-1] == met, (lang, line)


def test_the_csv_files_are_the_same_in_both_languages(reports: dict[str, Path]) -> None:
    for name in CSV_FILES:
        if name == "causes":  # the meaning column is in the report's language
            en = [
                {k: v for k, v in r.items() if k != "meaning"}
                for r in read_csv(reports["en"], name)
            ]
            zh = [
                {k: v for k, v in r.items() if k != "meaning"}
                for r in read_csv(reports["zh-CN"], name)
            ]
            assert en == zh
        else:
            assert (reports["en"] / f"{name}.csv").read_bytes() == (
                reports["zh-CN"] / f"{name}.csv"
            ).read_bytes(), name


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_csv_figure_is_printed_in_the_pdf(reports: dict[str, Path], lang: str) -> None:
    directory = reports[lang]
    tokens = set(pdf_text(directory).split())
    numeric = re.compile(r"^[+-]?\d+(\.\d+)?$|^\d+:\d\d:\d\d$")
    checked = 0
    for name in CSV_FILES:
        if name in CHART_DATA:
            continue
        for row in read_csv(directory, name):
            for column, value in row.items():
                if numeric.match(value):
                    assert value in tokens, f"{name}.{column} = {value} not in the PDF"
                    checked += 1
                elif re.match(r"^\d{4}-\d\d-\d\dT", value):
                    day, clock = value[:10], value[11:19]
                    assert day in tokens and clock in tokens, f"{name}.{column} = {value}"
                    checked += 1
    assert checked > 150


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        (
            "en",
            [
                "Card transaction SMS notification: compliance report",
                "1. Coverage",
                "2. Delivery",
                "3. Latency",
                "4. Causes",
                "5. Incidents",
                "6. Terminals",
                "7. Data completeness",
                "8. How the figures are computed",
                "These figures rest on incomplete data.",
                "SMSGatewayOutage",
                "Bank-side SLI",
                "Cardholder-side share",
                "receipt notification (bank-side SLI, per acquirer) ≥ 97.50 %",
                "Asia/Shanghai",
                "daily-2026-03-10",
            ],
        ),
        (
            "zh-CN",
            [
                "银行卡交易短信通知合规报告",
                "1. 覆盖情况",
                "2. 送达情况",
                "3. 时延",
                "4. 原因分析",
                "5. 事件",
                "6. 终端",
                "7. 数据完整性",
                "8. 计算方法",
                "本报告的数据不完整。",
                "未达标",
                "持续中",
                "银行侧 SLI",
                "持卡人侧占比",
                "签购单通知（银行侧 SLI，按收单机构）≥ 97.50 %",
                "SMSGatewayOutage",
                "日报",
            ],
        ),
    ],
)
def test_the_pdf_text_has_the_headings(
    reports: dict[str, Path], lang: str, phrases: list[str]
) -> None:
    text = " ".join(pdf_text(reports[lang]).split())
    for phrase in phrases:
        assert phrase in text, phrase


def test_every_page_renders_to_png(reports: dict[str, Path], tmp_path: Path) -> None:
    for lang, directory in reports.items():
        pdf = directory / f"{directory.name}.pdf"
        info = subprocess.run(
            ["pdfinfo", str(pdf)], check=True, capture_output=True, text=True
        ).stdout
        pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))  # type: ignore[union-attr]
        assert 3 <= pages <= 12
        prefix = tmp_path / lang
        subprocess.run(
            ["pdftoppm", "-r", "40", "-png", str(pdf), str(prefix)], check=True, capture_output=True
        )
        images = sorted(tmp_path.glob(f"{lang}-*.png"))
        assert len(images) == pages
        for image in images:
            assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chinese_text_uses_embedded_noto_cjk_and_no_missing_glyph(
    reports: dict[str, Path],
) -> None:
    for directory in reports.values():
        pdf = directory / f"{directory.name}.pdf"
        listing = subprocess.run(
            ["pdffonts", str(pdf)], check=True, capture_output=True, text=True
        ).stdout.splitlines()[2:]
        assert listing, "no fonts"
        for line in listing:
            name, fields = line.split()[0], line.split()
            assert "Noto-Sans" in name and "CJK" in name, line
            assert fields[-5:-2] == ["yes", "yes", "yes"], line  # embedded, subset, unicode
        assert notdef_glyphs(pdf) == []


def test_the_glyph_check_sees_a_missing_character(tmp_path: Path) -> None:
    """Control: a character no installed font has is caught as .notdef."""
    pdf = tmp_path / "missing.pdf"
    render_pdf(
        "<html><body style=\"font-family: 'Noto Sans CJK SC'\">合规 \U0010fffd</body></html>", pdf
    )
    assert notdef_glyphs(pdf)


def test_the_html_page_is_self_contained(reports: dict[str, Path]) -> None:
    for directory in reports.values():
        html = (directory / f"{directory.name}.html").read_text(encoding="utf-8")
        assert html.count("data:image/svg+xml;base64,") == 3
        assert not re.search(r"""(src|href)=["']https?://""", html)


def test_charts_draw_every_character(prometheus: LoadedPrometheus) -> None:
    period = resolve_period("daily", load_zone(ds.ZONE), end=GENERATED_AT, now=GENERATED_AT)
    data = gather(PrometheusClient(prometheus.url), period, DEFAULT_OBJECTIVES, now=GENERATED_AT)
    for lang in CATALOGUES:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # matplotlib warns on a glyph missing from its font
            for draw in (charts.success_chart, charts.latency_chart, charts.causes_chart):
                svg = draw(data, Texts(lang))
                assert "<path" in svg and "<text" not in svg


def test_both_languages_have_the_same_texts() -> None:
    en, zh = CATALOGUES["en"], CATALOGUES["zh-CN"]
    assert set(en) == set(zh)
    for key in en:
        assert re.findall(r"{(\w+)}", en[key]) == re.findall(r"{(\w+)}", zh[key]) or sorted(
            re.findall(r"{(\w+)}", en[key])
        ) == sorted(re.findall(r"{(\w+)}", zh[key])), key
