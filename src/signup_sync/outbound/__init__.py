"""The one policy every outbound connection goes through (see docs/security.md).

``OutboundPolicy`` decides which addresses the service may connect to; ``guarded_client``
builds the httpx client that enforces it at connect time, for every hop of a redirect.
"""

from signup_sync.outbound.addresses import (
    OutboundPolicy,
    OutboundRefused,
    Resolver,
    parse_allow,
    system_resolver,
)
from signup_sync.outbound.transport import GuardedBackend, GuardedTransport, guarded_client

__all__ = [
    "GuardedBackend",
    "GuardedTransport",
    "OutboundPolicy",
    "OutboundRefused",
    "Resolver",
    "guarded_client",
    "parse_allow",
    "system_resolver",
]
