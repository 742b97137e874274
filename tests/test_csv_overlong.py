"""CsvRows reports exactly the rows with non-empty cells past the header (issue 18, point 10)."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from signup_sync.sources.csv_import import CsvRows

CELL = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)
HEADER = ["email", "name", "date"]


@given(st.lists(st.lists(CELL, min_size=1, max_size=6), max_size=12))
def test_overlong_rows_are_exactly_those_with_extra_values(rows: list[list[str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    buffer.seek(0)
    reader = CsvRows(buffer, {"email": (), "name": (), "date": ()})
    read = [number for chunk in iter(lambda: reader.chunk(5), []) for (number, _), _ in chunk]
    expected = {
        number: len(cells)
        for number, cells in enumerate(rows, start=2)
        if any(c.strip() for c in cells[len(HEADER) :])
    }
    assert reader.overlong == expected
    assert set(expected) <= set(read)  # still handed out, for the caller to report
