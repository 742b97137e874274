"""Connectors, one module per source, and the registry the sync engine reads.

Adding a source = one new module here + one line in REGISTRY.
"""

from __future__ import annotations

from signup_sync.sources.base import Connector
from signup_sync.sources.easyappointments import EasyAppointmentsConnector
from signup_sync.sources.eventbrite import EventbriteConnector
from signup_sync.sources.poshvip import PoshvipConnector
from signup_sync.sources.zoom import ZoomConnector

REGISTRY: dict[str, type[Connector]] = {
    EasyAppointmentsConnector.source_type: EasyAppointmentsConnector,
    EventbriteConnector.source_type: EventbriteConnector,
    PoshvipConnector.source_type: PoshvipConnector,
    ZoomConnector.source_type: ZoomConnector,
}
