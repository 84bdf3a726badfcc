"""The committed dashboards/*.json are exactly what the generator makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter import cli
from exporter.dashboards import generate
from exporter.vocabulary import LANGUAGES


@pytest.mark.parametrize("lang", LANGUAGES)
def test_committed_json_matches_the_generator(repo_root: Path, lang: str) -> None:
    directory = repo_root / "dashboards" / generate.subdirectory(lang)
    stale = generate.drifted(directory, lang)
    assert not stale, (
        f"out of date: {stale}; run `smswatch dashboards generate` and commit dashboards/"
    )
    committed = {path.name for path in directory.glob("*.json")}
    assert committed == set(generate.render_all(lang)), "a file the generator does not make"


def test_generation_is_deterministic() -> None:
    assert generate.render_all() == generate.render_all()


def test_json_is_sorted_and_ends_with_a_newline() -> None:
    for text in generate.render_all().values():
        assert text.endswith("}\n")
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


def test_cli_generate_writes_and_check_detects_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dashboards", "generate", "--output-dir", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(generate.render_all())
    chinese = sorted(p.name for p in (tmp_path / "zh-CN").glob("*.json"))
    assert chinese == sorted(generate.render_all("zh-CN"))
    assert cli.main(["dashboards", "generate", "--output-dir", str(tmp_path), "--check"]) == 0
    assert capsys.readouterr().out.count("3 dashboards up to date") == 2

    (tmp_path / "zh-CN" / "smswatch-oncall-zh-cn.json").write_text("{}\n", encoding="utf-8")
    english = ["dashboards", "generate", "--output-dir", str(tmp_path), "--lang", "en", "--check"]
    assert cli.main(english) == 0
    capsys.readouterr()
    assert cli.main(["dashboards", "generate", "--output-dir", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "one line"
    assert "out of date: " in err and "zh-CN/smswatch-oncall-zh-cn.json" in err
