"""Test helpers for downloads: a network guard that allows loopback only, and a local HTTP file server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading

from psysc import _registry


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def allow_loopback_only(monkeypatch) -> None:
    """Make any connection to a host other than 127.0.0.1 / ::1 fail the test (proxies and mirrors unset)."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(_registry.ENV_BASE_URL, raising=False)
    loopback = ("127.0.0.1", "::1", "localhost")

    def check(what, host):
        if host not in loopback:
            raise AssertionError(f"test tried to reach {what}: only loopback is allowed")

    def guarded(real, what):
        def call(self, address, *args, **kwargs):
            check(f"{address!r} ({what})", address[0] if isinstance(address, tuple) else address)
            return real(self, address, *args, **kwargs)

        return call

    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):  # name lookups leave the machine too
        check(f"{host!r} (name lookup)", host.decode() if isinstance(host, bytes) else host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(socket.socket.connect, "connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(socket.socket.connect_ex, "connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", guarded_sendto(socket.socket.sendto, check))
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def guarded_sendto(real, check):
    """``socket.sendto(data[, flags], address)`` with the address checked (UDP, e.g. DNS by hand)."""

    def sendto(self, data, *args):
        address = args[-1]
        check(f"{address!r} (sendto)", address[0] if isinstance(address, tuple) else address)
        return real(self, data, *args)

    return sendto


class Server:
    """Serve the files below ``root`` on 127.0.0.1 (a free port); ``requests`` lists the paths asked for."""

    def __init__(self, root):
        self.root = root
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
