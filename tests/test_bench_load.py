"""The benchmark reads wrk's report right, including latencies wrk prints in seconds."""

from __future__ import annotations

import pytest
from bench.load import parse

REPORT = """Running 6s test @ http://127.0.0.1:8000
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   110.21ms  201.40ms   1.90s    93.10%
  Latency Distribution
     50%   60.10ms
     75%   90.00ms
     90%  150.00ms
     99%    1.20s{PAD}
  3600 requests in 6.01s, 1.20MB read
  Non-2xx or 3xx responses: 2
Requests/sec:    599.00
""".replace("{PAD}", " ")  # wrk pads a seconds value with a blank


def test_seconds_with_wrks_padding_are_read() -> None:
    result = parse(REPORT)
    assert result.p50_ms == pytest.approx(60.1)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.requests == 3600
    assert result.errors == 2


def test_a_report_without_percentiles_is_an_error_not_zero() -> None:
    without = "\n".join(line for line in REPORT.splitlines() if "%" not in line)
    with pytest.raises(RuntimeError, match="latency distribution"):
        parse(without)
