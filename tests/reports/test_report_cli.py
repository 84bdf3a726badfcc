"""`smswatch report` as a user runs it: the files, and one clear line plus an exit code on bad
input; a failed run never leaves a report that looks complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_harness import GENERATED_AT, LoadedPrometheus, daily_request

from exporter.cli import main
from exporter.errors import ReportError
from exporter.reports import render
from exporter.reports.report import generate_report

from harness import free_port

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["report", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_daily_report_from_the_command_line(
    prometheus: LoadedPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "--prometheus.url",
            prometheus.url,
            "--period",
            "daily",
            "--end",
            "2026-03-11T01:00",
            "--timezone",
            "Asia/Shanghai",
            "--lang",
            "zh-CN",
            "--format",
            "csv,html",
            "--objective.receipt-notification",
            "0.98",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert (code, err) == (0, "")
    directory = tmp_path / "smswatch-daily-2026-03-10-zh-CN"
    assert out.strip() == str(directory)
    assert (directory / "smswatch-daily-2026-03-10-zh-CN.html").is_file()
    assert not (directory / "smswatch-daily-2026-03-10-zh-CN.pdf").exists()
    assert (directory / "coverage.csv").is_file()
    # The receipt objective is the one given: acq-a's SLI (97.95 %) misses 98 %.
    acquirers = (directory / "delivery_acquirer.csv").read_text(encoding="utf-8").splitlines()
    header = acquirers[0].split(",")
    acq_a = dict(
        zip(header, next(r for r in acquirers if r.startswith("acq-a,")).split(","), strict=True)
    )
    assert (acq_a["sli_pct"], acq_a["objective_pct"], acq_a["meets_objective"]) == (
        "97.95",
        "98.00",
        "no",
    )


def test_a_custom_period(
    prometheus: LoadedPrometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        [
            "--prometheus.url",
            prometheus.url,
            "--period",
            "custom",
            "--from",
            "2026-03-10T14:00:17+08:00",
            "--to",
            "2026-03-10T20:00:17+08:00",
            "--timezone",
            "Asia/Shanghai",
            "--format",
            "csv",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    assert Path(out.strip()).name == "smswatch-custom-20260310T1400-20260310T2000-en"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--period", "custom", "--from", "2026-03-10", "--to", "2026-03-09"],
            2,
            "smswatch: error: --to: the period ends before it starts",
        ),
        (
            ["--timezone", "Mars/Base"],
            2,
            "smswatch: error: --timezone: unknown time zone 'Mars/Base'",
        ),
        (["--format", "pdf,docx"], 2, "smswatch: error: --format: formats must be"),
        (["--end", "someday"], 2, "smswatch: error: --end: not a time"),
        (
            ["--period", "custom", "--from", "2026-03-10"],
            2,
            "smswatch: error: --period: a custom period needs both --from and --to",
        ),
        (["--objective.delivered", "99.5"], 2, "smswatch: error: --objective.delivered:"),
        (
            ["--objective.receipt-notification", "97.5"],
            2,
            "smswatch: error: --objective.receipt-notification:",
        ),
        (
            ["--period", "monthly", "--end", "2025-02-01"],
            1,
            "smswatch: error: no smswatch data in the period 2025-01-01 00:00 – 2025-02-01 00:00",
        ),
    ],
)
def test_bad_input_is_one_line_and_an_exit_code(
    prometheus: LoadedPrometheus,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    out_dir = tmp_path / "out"
    # Options given twice: the last one wins, so the case's own options override these.
    result, out, err = run(
        [
            "--prometheus.url",
            prometheus.url,
            "--out",
            str(out_dir),
            "--timezone",
            "Asia/Shanghai",
            *args,
        ],
        capsys,
    )
    assert result == code
    assert out == ""
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_prometheus_unreachable_from_a_real_process(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "exporter",
            "report",
            "--prometheus.url",
            url,
            "--end",
            "2026-03-11",
            "--out",
            str(tmp_path / "out"),
            "--prometheus.timeout",
            "5s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"smswatch: error: Prometheus unreachable at {url}: ConnectionError\n"
    assert not (tmp_path / "out").exists()


def test_a_failure_while_writing_leaves_no_report_and_keeps_the_previous_one(
    prometheus: LoadedPrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = daily_request(prometheus.url, tmp_path, formats=("pdf", "csv"))
    first = generate_report(request, now=lambda: GENERATED_AT)
    before = {p.name: p.read_bytes() for p in first.iterdir()}

    def broken(html: str, target: Path) -> None:
        target.write_bytes(b"%PDF-1.7 half a report")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(render, "render_pdf", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate_report(request, now=lambda: GENERATED_AT)
    assert [p.name for p in tmp_path.iterdir()] == [first.name]
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_a_chinese_report_without_the_cjk_font_stops_with_the_fix(
    prometheus: LoadedPrometheus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "CJK_FONT", "No Such Font CJK")
    request = daily_request(prometheus.url, tmp_path, lang="zh-CN", formats=("pdf",))
    with pytest.raises(ReportError, match=r"apt-get install fonts-noto-cjk"):
        generate_report(request, now=lambda: GENERATED_AT)
    assert list(tmp_path.iterdir()) == []
