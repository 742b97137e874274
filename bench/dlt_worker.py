"""The sync baseline: dlt's ``rest_api`` source reading the same fake into the same PostgreSQL.

``python -m bench.dlt_worker DATABASE_URL BASE_URL WORKDIR`` prints JSON: seconds (the
pipeline run only) and the rows it loaded. dlt runs with its defaults (append, its own
normalisation of nested fields into child tables); its state lives in WORKDIR.
"""

from __future__ import annotations

import os
import sys
import time

import orjson

import bench  # noqa: F401 - puts this checkout on sys.path
from bench.fake_eventbrite import ORGANIZATION_ID, TOKEN


def main(url: str, base_url: str, workdir: str) -> None:
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {"type": "bearer", "token": TOKEN},
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "pagination.continuation",
                    "cursor_param": "continuation",
                },
            },
            "resources": [
                {
                    "name": "attendees",
                    "endpoint": {
                        "path": f"organizations/{ORGANIZATION_ID}/attendees/",
                        "params": {"expand": "event"},
                        "data_selector": "attendees",
                    },
                }
            ],
        }
    )
    if "@" in url and ":" not in url.split("//", 1)[1].split("@", 1)[0]:
        # dlt insists on a password; the local server trusts loopback and ignores it.
        url = url.replace("@", ":unused@", 1)
    pipeline = dlt.pipeline(
        pipeline_name="bench_eventbrite",
        destination=dlt.destinations.postgres(credentials=url),
        dataset_name="dlt_eventbrite",
        pipelines_dir=workdir,
    )
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM attendees")[0][0]
    print(orjson.dumps({"seconds": seconds, "records": rows}).decode())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
