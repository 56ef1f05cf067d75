"""Records are plain lists of dicts with a pandas view; the report is Markdown in Jupyter."""

from __future__ import annotations

import sys

import pytest

from stability_sweeps.records import Records, Report


def test_records_are_a_list_with_nested_objects_as_dotted_columns() -> None:
    records = Records(
        [{"id": 1, "params": {"learning_rate": 0.1}}, {"id": 2, "params": {"learning_rate": 1.0}}]
    )
    assert records == [
        {"id": 1, "params": {"learning_rate": 0.1}},
        {"id": 2, "params": {"learning_rate": 1.0}},
    ]
    assert records.meta == {}
    frame = records.to_pandas()
    assert list(frame.columns) == ["id", "params.learning_rate"]
    assert frame["params.learning_rate"].tolist() == [0.1, 1.0]


def test_to_pandas_without_pandas_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what `import pandas` meets when it is not installed
    with pytest.raises(ImportError, match="pip install pandas"):
        Records([{"a": 1}]).to_pandas()


def test_report_renders_its_markdown() -> None:
    report = Report(sweep_id=3, markdown="# Sweep 3\n\nstable", data={"headline": "stable"})
    assert report._repr_markdown_() == str(report) == "# Sweep 3\n\nstable"
    assert report.headline == "stable"
