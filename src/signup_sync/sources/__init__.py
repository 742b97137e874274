"""Connectors, one module per source, and the registry the sync engine reads.

Adding a source = one new module here + one line in REGISTRY.
"""

from __future__ import annotations

from signup_sync.sources.base import Connector
from signup_sync.sources.easyappointments import EasyAppointmentsConnector

REGISTRY: dict[str, type[Connector]] = {
    "easyappointments": EasyAppointmentsConnector,
}
