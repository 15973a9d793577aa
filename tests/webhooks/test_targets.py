"""Webhook targets: the URL rules and the address classification as tables,
the start-up check, and the vetting resolver against the machine's real
resolver (`localhost`)."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket

import pytest

from imagepipe.webhooks.targets import (
    DOCUMENTATION,
    LINK_LOCAL,
    LOOPBACK,
    MULTICAST,
    NOT_GLOBAL,
    PRIVATE,
    RESERVED,
    SHARED,
    UNSPECIFIED,
    Unsafe,
    UnsafeTarget,
    VettingResolver,
    address_problem,
    check_target,
    classify,
    parse_target,
)

V4 = ipaddress.IPv4Address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
        ("2a00:1450:4001::200e", None),
        ("127.0.0.1", Unsafe(LOOPBACK)),
        ("127.255.255.254", Unsafe(LOOPBACK)),
        ("::1", Unsafe(LOOPBACK)),
        ("10.1.2.3", Unsafe(PRIVATE)),
        ("172.16.0.1", Unsafe(PRIVATE)),
        ("172.31.255.255", Unsafe(PRIVATE)),
        ("172.32.0.1", None),
        ("192.168.1.1", Unsafe(PRIVATE)),
        ("fd00:ec2::254", Unsafe(PRIVATE)),  # the EC2 metadata service over IPv6
        ("fc00::1", Unsafe(PRIVATE)),
        ("fec0::1", Unsafe(PRIVATE)),
        ("169.254.169.254", Unsafe(LINK_LOCAL)),  # the cloud metadata service
        ("fe80::1", Unsafe(LINK_LOCAL)),
        ("fe80::1%eth0", Unsafe(LINK_LOCAL)),
        ("100.64.0.1", Unsafe(SHARED)),  # carrier-grade NAT
        ("100.127.255.254", Unsafe(SHARED)),
        ("100.128.0.1", None),
        ("224.0.0.1", Unsafe(MULTICAST)),
        ("239.255.255.250", Unsafe(MULTICAST)),
        ("ff02::1", Unsafe(MULTICAST)),  # Python 3.11.7 calls it global
        ("ff0e::1", Unsafe(MULTICAST)),
        ("0.0.0.0", Unsafe(UNSPECIFIED)),
        ("0.1.2.3", Unsafe(UNSPECIFIED)),
        ("::", Unsafe(UNSPECIFIED)),
        ("240.0.0.1", Unsafe(RESERVED)),
        ("255.255.255.255", Unsafe(RESERVED)),
        ("192.0.0.8", Unsafe(RESERVED)),  # Python 3.11.7 calls it global
        ("198.18.0.1", Unsafe(RESERVED)),
        ("100::1", Unsafe(RESERVED)),
        ("2001::1", Unsafe(RESERVED)),  # Teredo
        ("64:ff9b:1::a00:1", Unsafe(RESERVED)),  # local-use NAT64
        ("5f00::1", Unsafe(RESERVED)),
        ("192.0.2.1", Unsafe(DOCUMENTATION)),
        ("2001:db8::1", Unsafe(DOCUMENTATION)),
        ("3fff::1", Unsafe(DOCUMENTATION)),
        ("4000::1", Unsafe(NOT_GLOBAL)),  # outside 2000::/3, unassigned
        # IPv6 forms carrying an IPv4 address are judged by the address they carry.
        ("::ffff:127.0.0.1", Unsafe(LOOPBACK, "IPv4-mapped", V4("127.0.0.1"))),
        ("::ffff:a9fe:a9fe", Unsafe(LINK_LOCAL, "IPv4-mapped", V4("169.254.169.254"))),
        ("::ffff:8.8.8.8", None),
        ("2002:a00:1::", Unsafe(PRIVATE, "6to4", V4("10.0.0.1"))),
        ("2002:7f00:1:ffff::1", Unsafe(LOOPBACK, "6to4", V4("127.0.0.1"))),
        ("2002:808:808::", None),
        ("64:ff9b::a9fe:a9fe", Unsafe(LINK_LOCAL, "NAT64", V4("169.254.169.254"))),
        ("64:ff9b::100.64.0.1", Unsafe(SHARED, "NAT64", V4("100.64.0.1"))),
        ("64:ff9b::8.8.8.8", None),
        ("::7f00:1", Unsafe(LOOPBACK, "IPv4-compatible", V4("127.0.0.1"))),
        ("::10.0.0.1", Unsafe(PRIVATE, "IPv4-compatible", V4("10.0.0.1"))),
    ],
)
def test_classify(address: str, expected: Unsafe | None) -> None:
    assert classify(ipaddress.ip_address(address)) == expected


@pytest.mark.parametrize(
    ("address", "allowed_with_allow_private"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("fd00:ec2::254", True),
        ("::ffff:192.168.0.1", True),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("192.0.2.1", False),
    ],
)
def test_allow_private_admits_private_kinds_only(address: str, allowed_with_allow_private: bool) -> None:
    ip = ipaddress.ip_address(address)
    assert address_problem(ip, allow_private=False) == classify(ip) is not None
    assert (address_problem(ip, allow_private=True) is None) is allowed_with_allow_private


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("hooks.example.com/x", "http:// or https://"),
        ("http:///x", "must name a host"),
        ("https://user:pass@hooks.example.com/", "user name or password"),
        ("https://user@hooks.example.com/", "user name or password"),
        ("https://hooks.example.com:0/", "port must be 1 to 65535"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("http://127.1/", "not a plain one"),
        ("http://2130706433/", "not a plain one"),
        ("http://0177.0.0.1/", "not a plain one"),
        ("http://[::ffff:zz]/", "not a plain one"),
    ],
)
def test_urls_breaking_a_rule_are_refused_by_name(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_target(url)


@pytest.mark.parametrize(
    ("url", "host", "port", "literal"),
    [
        ("https://hooks.example.com/imagepipe", "hooks.example.com", 443, None),
        ("http://hooks.example.com:8080/x?y=1", "hooks.example.com", 8080, None),
        ("https://HOOKS.Example.com/", "hooks.example.com", 443, None),
        ("http://93.184.215.14/", "93.184.215.14", 80, "93.184.215.14"),
        ("http://[2606:4700::1111]:8443/", "2606:4700::1111", 8443, "2606:4700::1111"),
    ],
)
def test_urls_within_the_rules(url: str, host: str, port: int, literal: str | None) -> None:
    target = parse_target(url)
    assert (target.host, target.port) == (host, port)
    assert target.literal == (ipaddress.ip_address(literal) if literal else None)


def test_localhost_resolves_to_loopback_and_is_refused_unless_private_is_allowed() -> None:
    async def resolve(allow_private: bool) -> list[str]:
        answers = await VettingResolver(allow_private).resolve("localhost", 8080, socket.AF_UNSPEC)
        assert {a["port"] for a in answers} == {8080} and {a["hostname"] for a in answers} == {"localhost"}
        return [a["host"] for a in answers]

    assert "127.0.0.1" in asyncio.run(resolve(True))
    with pytest.raises(UnsafeTarget) as refused:
        asyncio.run(resolve(False))
    assert refused.value.unsafe.kind == LOOPBACK


@pytest.mark.parametrize(
    ("url", "allow_private", "refuse", "says"),
    [
        ("http://localhost:8080/hook", False, True, "localhost resolves to"),
        ("http://127.0.0.1:8080/hook", False, True, "127.0.0.1 is loopback"),
        ("http://[::ffff:169.254.169.254]/", False, True, "IPv4-mapped form of link-local"),
        ("http://10.0.0.1/", False, True, "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE"),
        ("http://224.0.0.1/", True, True, "multicast"),
        ("ftp://localhost/", True, True, "http:// or https://"),
        # .invalid never resolves (RFC 6761): a warning, DNS may come later.
        ("https://hooks.imagepipe.invalid/", False, False, "does not resolve now"),
    ],
)
def test_check_target(url: str, allow_private: bool, refuse: bool, says: str) -> None:
    problem = asyncio.run(check_target(url, allow_private))
    assert problem is not None and problem.refuse is refuse
    assert says in problem.message


@pytest.mark.parametrize("url", ["http://localhost:8080/hook", "http://127.0.0.1/", "http://[::1]:9/"])
def test_check_target_passes_loopback_when_private_is_allowed(url: str) -> None:
    assert asyncio.run(check_target(url, allow_private=True)) is None


def test_multicast_never_passes_check_target_even_with_allow_private() -> None:
    problem = asyncio.run(check_target("http://[ff02::1]/", allow_private=True))
    assert problem is not None and problem.refuse and "multicast" in problem.message
    assert "IMAGEPIPE_WEBHOOK_ALLOW_PRIVATE" not in problem.message
