"""test_connections.py: the connection guard (issue 13 #2, #10) against a real quidditch.
1,500 slowloris connections from one client address (127.0.0.2) must not lock out a client at
another (127.0.0.1): past the per-client cap new connections are closed at once, the rest are
closed by the server when their header deadline passes, and ordinary requests are answered
throughout. A body that never ends, a chunk size of 2^64-1, a garbage request line and an idle
keep-alive connection are each closed by their deadline. No timing is asserted beyond
"closed before a generous bound"; the latency figure under attack is bench/bench_slowloris.py's."""
import os
import resource
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402

SLOW = 1500


def slow_count():
    """SLOW, or fewer when the descriptor limit is lower (this process and the node share the
    machine's limit); the caps and deadlines are tested the same way with fewer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = SLOW + 200 if hard == resource.RLIM_INFINITY else min(SLOW + 200, hard)
    if soft < top:
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    n = min(SLOW, top - 200)
    if n < 100:
        print("# skip: only %d file descriptors" % top)
        sys.exit(77)
    if n < SLOW:
        print("# %d slow connections (descriptor limit %d)" % (n, top))
    return n


def slow_conn(port, src="127.0.0.2"):
    c = socket.socket()
    c.settimeout(5)
    c.bind((src, 0))
    c.connect(("127.0.0.1", port))
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    return c


def closed_by_server(c, within):
    """True when the server closes C (EOF or reset) within WITHIN seconds."""
    c.settimeout(0.2)
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            data = c.recv(4096)
            if not data:
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def metric(s, name, labels=""):
    text = s.http("GET", "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def t_slowloris_does_not_lock_others_out():
    slow = slow_count()
    per_client = slow * 4 // 5  # the rest are refused at once
    with Server(extra=["--header-timeout-ms", "3000", "--max-connections-per-client",
                       str(per_client)]) as s:
        conns = []
        for _ in range(slow):
            try:
                conns.append(slow_conn(s.port))
            except OSError:
                pass  # the kernel's backlog may refuse some: fine, they hold nothing
        # ordinary requests from another address are answered while all of them are open
        for i in range(20):
            with urllib.request.urlopen(s.url + "/", timeout=20) as r:
                eq(r.status, 200, "ordinary request %d under attack" % i)
        # connections past the per-client cap were closed at once, the others by the deadline
        closed = sum(1 for c in conns if closed_by_server(c, 20))
        eq(closed, len(conns), "every slow connection closed by the server")
        reaped = metric(s, "quidditch_http_connections_reaped_total", 'phase="headers"')
        check(reaped is not None and reaped >= per_client * 0.9,
              "reaped at the header deadline: %r" % reaped)
        for c in conns:
            c.close()
        with urllib.request.urlopen(s.url + "/", timeout=20) as r:
            eq(r.status, 200, "after the attack")


def t_each_phase_has_a_deadline():
    with Server(extra=["--header-timeout-ms", "1000", "--body-timeout-ms", "1500",
                       "--idle-timeout-ms", "1500"]) as s:
        cases = [
            ("a body that never ends", b"PUT /x/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"),
            ("a chunk of 2^64-1 bytes", b"PUT /x/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
             b"application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab"),
            ("a garbage request line", b"GARBAGE\r\n"),
            ("an idle keep-alive connection", b""),
        ]
        socks = []
        for what, raw in cases:
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            if raw:
                c.sendall(raw)
            socks.append((what, c))
        for what, c in socks:
            check(closed_by_server(c, 30), "%s is closed by the server" % what)
            c.close()
        eq(s.http("HEAD", "/x").status, 404, "nothing was stored")
        eq(s.http("GET", "/").status, 200, "still serving")


if __name__ == "__main__":
    run_tests([
        ("slowloris_from_one_address_does_not_lock_others_out", t_slowloris_does_not_lock_others_out),
        ("headers_body_and_idle_connections_each_have_a_deadline", t_each_phase_has_a_deadline),
    ])
