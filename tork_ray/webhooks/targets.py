"""Where a webhook may be sent: the URL's shape, and the `webhooks.allow` list of host names and networks."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from tork_ray.errors import BadRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SCHEMES = ("http", "https")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class TargetRefused(BadRequest):
    """A webhook address is malformed or outside `webhooks.allow`; the message never carries the full URL (a
    sub-job's URL is rendered from templates and may hold a secret), only the host."""


@dataclass(frozen=True)
class TargetPolicy:
    """The allow-list: exact host names, `*.example.com` wildcards (any sub-domain), and CIDR networks. Empty
    allows any address. A host name not on the list is allowed only if it resolves into a listed network,
    checked when the call is made (DNS can change between submit and send), and the call then goes to that
    checked address, never to a second lookup's."""

    names: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], setting: str = "webhooks.allow") -> TargetPolicy:
        names: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if not all(_LABEL.match(part) for part in entry.removeprefix("*.").split(".")):
                raise BadRequest(f"setting {setting}: {raw!r} is neither a host name nor a network")
            names.append(entry)
        return cls(tuple(names), tuple(networks))

    @property
    def restricted(self) -> bool:
        return bool(self.names or self.networks)

    def name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        for name in self.names:
            if name.startswith("*.") and host.endswith(name[1:]) and len(host) > len(name) - 1:
                return True
            if host == name:
                return True
        return False

    def address_allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks if network.version == address.version)

    def submit_problem(self, url: str) -> str | None:
        """Why `url` is refused at submit (a rule text after the field path), or None. Only what can be known
        without DNS: the shape, a literal IP outside the networks, a name when only names are listed."""
        try:
            parts = split_url(url)
        except TargetRefused as exc:
            return exc.message
        host = parts.hostname or ""
        if not self.restricted or self.name_allowed(host):
            return None
        literal = ip_literal(host)
        if literal is not None:
            return None if self.address_allowed(literal) else f"is not allowed: {host} is not in webhooks.allow"
        if self.networks:
            return None  # a name: its addresses are checked when the call is made
        return f"is not allowed: {host} is not in webhooks.allow"

    def pick_address(self, host: str, resolved: Sequence[str]) -> str:
        """The first resolved address inside a listed network; TargetRefused when none is."""
        for text in resolved:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if self.address_allowed(address):
                return str(address)
        raise TargetRefused(f"{host} resolves to no address in webhooks.allow")


def split_url(url: str) -> SplitResult:
    """The parts of an http(s) URL with a host; TargetRefused (naming what is wrong, not the URL) otherwise."""
    if any(ch in url for ch in "\r\n\t\0 "):
        raise TargetRefused("must be a URL without whitespace or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise TargetRefused("is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise TargetRefused("must be an http or https URL")
    if not parts.hostname:
        raise TargetRefused("must name a host")
    return parts


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


async def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the event loop's resolver: no blocking lookup on the sender's loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
