"""Which webhook targets may be connected to, and a resolver that connects
only to those addresses.

The receiver's URL is configuration, but events carry our data to it: a URL
(or a DNS answer) pointing inside the cluster would turn the deliverer into a
way to reach the metadata service, the pod network or loopback. So a target
is refused unless every address its name resolves to is global, and the
HTTP client connects only to addresses vetted that way, through
`VettingResolver`: the answer that was checked is the answer connected to,
leaving no DNS-rebinding window between a check and the connection.

The special-purpose networks are listed here from the IANA IPv4 and IPv6
Special-Purpose Address Registries rather than taken from `ipaddress`
alone: its lists depend on the Python patch release (3.11.7 calls
`ff02::1`, `64:ff9b::10.0.0.1` and `192.0.0.8` global)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK, PRIVATE, LINK_LOCAL, SHARED = "loopback", "private", "link-local", "shared address space"
UNSPECIFIED, MULTICAST, RESERVED = "unspecified", "multicast", "reserved"
DOCUMENTATION, NOT_GLOBAL = "documentation", "not global"
# What IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE admits (in-cluster receivers, tests on
# loopback); the rest never carries a TCP connection to a receiver.
PRIVATE_KINDS = frozenset({LOOPBACK, PRIVATE, LINK_LOCAL, SHARED})

_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", UNSPECIFIED),  # "this network": 0.0.0.0 reaches loopback on Linux
    ("10.0.0.0/8", PRIVATE),
    ("100.64.0.0/10", SHARED),  # carrier-grade NAT; also pod networks (EKS)
    ("127.0.0.0/8", LOOPBACK),
    ("169.254.0.0/16", LINK_LOCAL),  # 169.254.169.254: the cloud metadata service
    ("172.16.0.0/12", PRIVATE),
    ("192.0.0.0/24", RESERVED),  # IETF protocol assignments
    ("192.0.2.0/24", DOCUMENTATION),
    ("192.88.99.0/24", RESERVED),  # 6to4 relay anycast (deprecated)
    ("192.168.0.0/16", PRIVATE),
    ("198.18.0.0/15", RESERVED),  # benchmarking
    ("198.51.100.0/24", DOCUMENTATION),
    ("203.0.113.0/24", DOCUMENTATION),
    ("224.0.0.0/4", MULTICAST),
    ("240.0.0.0/4", RESERVED),  # and 255.255.255.255, broadcast
    ("::/128", UNSPECIFIED),
    ("::1/128", LOOPBACK),
    ("64:ff9b:1::/48", RESERVED),  # local-use NAT64: translates to anything
    ("100::/64", RESERVED),  # discard-only
    ("2001::/23", RESERVED),  # IETF protocol assignments, Teredo among them
    ("2001:db8::/32", DOCUMENTATION),
    ("3fff::/20", DOCUMENTATION),
    ("5f00::/16", RESERVED),  # segment routing
    ("fc00::/7", PRIVATE),  # unique local: fd00:ec2::254, the EC2 metadata service over IPv6
    ("fe80::/10", LINK_LOCAL),
    ("fec0::/10", PRIVATE),  # site-local (deprecated)
    ("ff00::/8", MULTICAST),
)
SPECIAL_NETWORKS = tuple((ipaddress.ip_network(net), kind) for net, kind in _NETWORKS)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


class UnsafeTarget(OSError):
    """A target address not to be connected to (an OSError: aiohttp hands a
    resolver's OSError back as the cause of its connection error)."""

    def __init__(self, address: str, unsafe: Unsafe) -> None:
        super().__init__(f"{address} is {unsafe}")
        self.address = address
        self.unsafe = unsafe


@dataclass(frozen=True)
class Unsafe:
    """Why an address is not global: its kind (LOOPBACK, ...) and, for an IPv6
    form carrying an IPv4 address, the form and the address it carries."""

    kind: str
    form: str = ""
    inner: ipaddress.IPv4Address | None = None

    def __str__(self) -> str:
        return f"the {self.form} form of {self.kind} {self.inner}" if self.form else self.kind


@dataclass(frozen=True)
class Target:
    url: URL
    host: str
    port: int
    # The host written as an address: aiohttp connects to it without asking a resolver.
    literal: IPAddress | None


@dataclass(frozen=True)
class TargetProblem:
    message: str
    # False: only a warning (the name does not resolve now; DNS may come later).
    refuse: bool


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries, and the form's name."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(address))
    return None


def classify(address: IPAddress) -> Unsafe | None:
    """None for a global address; otherwise why not. An IPv6 form carrying an
    IPv4 address is judged by the address it carries."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            inner = classify(carried[1])
            return Unsafe(inner.kind, carried[0], carried[1]) if inner else None
    for network, kind in SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return Unsafe(kind)
    # IANA allocates global unicast from 2000::/3 only (Python calls 4000::1 global).
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return Unsafe(NOT_GLOBAL)
    return None if address.is_global else Unsafe(NOT_GLOBAL)


def address_problem(address: IPAddress, allow_private: bool) -> Unsafe | None:
    """Why this address must not be connected to; None when it may."""
    unsafe = classify(address)
    if unsafe is None or (allow_private and unsafe.kind in PRIVATE_KINDS):
        return None
    return unsafe


def parse_target(url: str) -> Target:
    """The target a URL names; ValueError naming the first rule it breaks."""
    try:
        parsed = URL(url)
        port = parsed.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = parsed.raw_host
    if not host:
        raise ValueError("must name a host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise ValueError("must not carry a user name or password (the signature authenticates us)")
    if port is None or not 0 < port < 65536:
        raise ValueError("port must be 1 to 65535")
    return Target(parsed, host, port, _literal(host))


def _literal(host: str) -> IPAddress | None:
    # aiohttp takes a host with a colon, or of digits and dots, for an address
    # and connects without a resolver: each must then be one, written plainly
    # (no "127.1" or "2130706433", which the socket layer would still map).
    if ":" not in host and not host.replace(".", "").isdigit():
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host {host!r} looks like an address but is not a plain one") from None


class VettingResolver(AbstractResolver):
    """Resolves with the event loop's getaddrinfo and answers only when every
    address is allowed; aiohttp then connects to exactly those addresses."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, family=family
        )
        results: list[ResolveResult] = []
        for info_family, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(sockaddr[0])
            problem = address_problem(address, self.allow_private)
            if problem is not None:
                raise UnsafeTarget(str(address), problem)
            scope = sockaddr[3] if info_family == socket.AF_INET6 and len(sockaddr) > 3 else 0
            results.append(
                ResolveResult(
                    hostname=host,
                    host=f"{address}%{scope}" if scope else str(address),
                    port=int(sockaddr[1]),
                    family=info_family,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"{host} resolves to no address")
        return results

    async def close(self) -> None:
        pass


async def check_target(url: str, allow_private: bool) -> TargetProblem | None:
    """The start-up check: a URL breaking the rules, or resolving to an address
    not allowed now, is refused; a name that does not resolve now is a warning."""
    try:
        target = parse_target(url)
    except ValueError as exc:
        return TargetProblem(str(exc), refuse=True)
    if target.literal is not None:
        problem = address_problem(target.literal, allow_private)
        return TargetProblem(unsafe_message(target.host, problem), refuse=True) if problem else None
    try:
        await VettingResolver(allow_private).resolve(target.host, target.port)
    except UnsafeTarget as exc:
        message = unsafe_message(f"{target.host} resolves to {exc.address}, which", exc.unsafe)
        return TargetProblem(message, refuse=True)
    except OSError as exc:
        return TargetProblem(f"{target.host} does not resolve now ({exc}); attempts will retry", False)
    return None


def unsafe_message(subject: str, unsafe: Unsafe) -> str:
    hint = (
        "; IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE=true admits private, loopback and link-local receivers"
        if unsafe.kind in PRIVATE_KINDS
        else ""
    )
    return f"{subject} is {unsafe}, not a global address{hint}"
