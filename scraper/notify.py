"""systemd's service notification protocol (sd_notify), without a dependency.

A service started with `Type=notify` finds a datagram socket's address in
`NOTIFY_SOCKET` (a path, or an abstract name starting with `@`) and sends it
newline-separated `KEY=VALUE` assignments: `READY=1`, `WATCHDOG=1`,
`STOPPING=1`, `STATUS=...`. Outside systemd the variable is unset and every
call does nothing.
"""

from __future__ import annotations

import os
import socket

__all__ = ["Notifier", "watchdog_interval"]


class Notifier:
    """Sends notifications to `NOTIFY_SOCKET`; a no-op when it is unset."""

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self.address: str | None = None
        if address.startswith("@"):
            self.address = "\0" + address[1:]
        elif address.startswith("/"):
            self.address = address
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `assignments` in one datagram; False if it could not be sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(assignments).encode("utf-8"), self.address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between `WATCHDOG=1` pings (half of `WATCHDOG_USEC`), or None when
    systemd set no watchdog for this process."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
