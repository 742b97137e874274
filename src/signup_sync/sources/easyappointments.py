"""EasyAppointments: appointments (with their customers and services) -> funnel events.

``mode="api"`` reads the REST API v1 (source-apis.md §1); ``mode="mysql"`` reads the EA
database directly, as existing deployments do. Both turn an appointment into one flat
record, so one mapping gives identical events. One idea per module:

* ``easyappointments_config``: the source config (``site_timezone`` required) and helpers;
* ``easyappointments_records``: the flat record, ``map_appointment`` and ``map_webhook``;
* ``easyappointments_api``: the REST reader (window re-read, id high-water mark);
* ``easyappointments_mysql``: the MySQL reader (keyset on change times, customers too);
* ``easyappointments_deletions``: appointments gone at the source become ``cancelled``;
* here: the registered connector, and the public names of all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from signup_sync.events.records import EventRecord
from signup_sync.sources.base import Page, SourceConfig, SourceContext
from signup_sync.sources.easyappointments_api import ApiReader
from signup_sync.sources.easyappointments_config import (
    CUSTOMER_FIELDS,
    SOURCE,
    CustomerField,
    EasyAppointmentsConfig,
    secret,
    zone,
)
from signup_sync.sources.easyappointments_deletions import GONE, map_gone
from signup_sync.sources.easyappointments_records import (
    appointment_record,
    customer_fields,
    local_to_utc,
    map_appointment,
    map_webhook,
)
from signup_sync.sources.errors import FatalSourceError

__all__ = [
    "CUSTOMER_FIELDS",
    "SOURCE",
    "ApiReader",
    "CustomerField",
    "EasyAppointmentsConfig",
    "EasyAppointmentsConnector",
    "appointment_record",
    "customer_fields",
    "local_to_utc",
    "map_appointment",
    "map_webhook",
    "secret",
    "zone",
]


class EasyAppointmentsConnector:
    """The registered connector: API or direct-MySQL reader, one mapping."""

    source_type: ClassVar[str] = SOURCE
    config_model: ClassVar[type[SourceConfig]] = EasyAppointmentsConfig

    def __init__(self, ctx: SourceContext) -> None:
        if not isinstance(ctx.config, EasyAppointmentsConfig):
            raise FatalSourceError("EasyAppointments: config is not an EasyAppointmentsConfig")
        self.ctx, self.config = ctx, ctx.config
        self.reader: Any = None

    async def pages(self) -> AsyncIterator[Page]:
        await self.aclose()
        if self.config.mode == "mysql":
            from signup_sync.sources.easyappointments_mysql import MysqlReader

            self.reader = MysqlReader(self.ctx, self.config)
        else:
            self.reader = ApiReader(self.ctx, self.config)
        async for page in self.reader.pages():
            yield page

    def map_record(self, record: Any) -> list[EventRecord]:
        if record.get("kind") == GONE:
            return map_gone(record)
        return map_appointment(record, self.config, self.ctx.run_started_at)

    async def aclose(self) -> None:
        if self.reader is not None:
            await self.reader.aclose()
            self.reader = None
