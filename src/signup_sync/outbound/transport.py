"""The httpx transport that enforces ``OutboundPolicy`` when it opens a connection.

httpcore lets a connection pool take its own network backend: ``GuardedBackend`` resolves
the host once, checks every address, and connects to a checked address. TLS still uses the
URL's host name (httpcore passes it as ``server_hostname``) and the Host header is the
request's, so certificates are verified as usual. Because the check happens where the socket
is opened, a name that resolves differently later (DNS rebinding) and every redirect hop are
checked too. Environment proxies are not used: they would connect somewhere else.
"""

from __future__ import annotations

import typing
from typing import Any

import httpcore
import httpx

from signup_sync.outbound.addresses import OutboundPolicy, OutboundRefused, UnresolvedHost


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.policy.resolve(host, port)
        except UnresolvedHost as exc:
            raise httpcore.ConnectError(str(exc)) from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolve() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("outbound requests do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool connects through GuardedBackend."""

    def __init__(self, policy: OutboundPolicy, *, verify: bool = True) -> None:
        super().__init__(trust_env=False)
        limits = httpx.Limits()
        # Replaces the pool the base class built (same settings, our backend): the request
        # and response mapping of httpx stays as it is.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(
    policy: OutboundPolicy,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    **kwargs: Any,
) -> httpx.AsyncClient:
    """An AsyncClient whose every connection, redirects included, passes ``policy``.

    ``transport`` replaces the network entirely (tests serving a fake in-process).
    """
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(policy), trust_env=False, **kwargs
    )
