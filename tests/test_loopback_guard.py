"""The network guard of the download tests: every way out of the machine fails, loopback works."""

import socket
import urllib.request

import pytest
from _loopback import Server

pytestmark = pytest.mark.usefixtures("loopback_only")


def test_connections_beyond_loopback_fail():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(AssertionError, match="only loopback"):
            s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routed
        with pytest.raises(AssertionError, match="only loopback"):
            s.connect_ex(("192.0.2.1", 443))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(AssertionError, match="only loopback"):
        s.sendto(b"x", ("192.0.2.1", 53))
    with pytest.raises(AssertionError, match="only loopback"):
        socket.getaddrinfo("huggingface.co", 443)
    with pytest.raises(AssertionError, match="only loopback"):
        socket.create_connection(("example.org", 80), timeout=1)


def test_loopback_still_works(tmp_path):
    (tmp_path / "f.txt").write_text("hello")
    server = Server(tmp_path)
    try:
        with urllib.request.urlopen(f"{server.url}/f.txt", timeout=10) as r:
            assert r.read() == b"hello"
        assert socket.getaddrinfo("localhost", 80)
    finally:
        server.stop()
    assert server.requests == ["/f.txt"]
