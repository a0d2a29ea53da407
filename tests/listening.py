"""The TCP sockets a process tree listens on, read from /proc (socket inodes of /proc/PID/fd in /proc/net/tcp{,6})."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import NamedTuple

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


class Listener(NamedTuple):
    pid: int
    name: str  # the process's command (Ray's workers rename themselves: ray::IDLE, ray::DashboardAgent)
    host: str
    port: int

    def loopback(self) -> bool:
        """127.0.0.0/8, ::1, or ::ffff:127.x (an IPv6 socket bound to an IPv4 loopback address)."""
        address = ipaddress.ip_address(self.host)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback


def _address(hex_address: str, v6: bool) -> tuple[str, int]:
    ip, port = hex_address.split(":")
    raw = bytes.fromhex(ip)
    if v6:  # four host-order 32-bit words
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, raw), int(port, 16)
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)


def _listening_inodes() -> dict[str, tuple[str, int]]:
    found = {}
    for table, v6 in (("tcp", False), ("tcp6", True)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                found[fields[9]] = _address(fields[1], v6)
    return found


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"


def listeners(pids: list[int]) -> list[Listener]:
    """Every listening TCP socket held by one of `pids` (a socket shared by a parent and a child counts once)."""
    inodes, found = _listening_inodes(), {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # ended meanwhile
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            inode = link[len("socket:[") : -1] if link.startswith("socket:[") else ""
            if inode in inodes and inode not in found:
                found[inode] = Listener(pid, _name(pid), *inodes[inode])
    return sorted(found.values())
