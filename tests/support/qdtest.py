"""qdtest.py: start real build/quidditch processes for integration tests (Redis's start_server).

Each Server gets a free 127.0.0.1 port and its own temp data directory, is polled with a
deadline until `GET /` answers (never sleep-and-hope), and can be stopped with SIGTERM, killed
with SIGKILL and restarted on the same port and data. http() talks JSON; check()/eq() print both
sides on failure. Standard library only.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.environ.get("QD_BUILD_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "build")
SOURCE = os.environ.get("QD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.text = body.decode("utf-8", "replace")
        self.headers = headers
        try:
            self.json = json.loads(self.text) if self.text else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.text[:2000])


class Server:
    def __init__(self, name="node-1", data=None, extra=(), env=None):
        self.env = dict(os.environ, **env) if env else None  # the process's, with ENV on top
        self.port = None  # the first start listens on port 0 and reads the port from the log
        self.tmp = tempfile.mkdtemp(prefix="qd-it-")
        self.data = data or os.path.join(self.tmp, "data")
        self.log = os.path.join(self.tmp, "server.log")
        self.name = name
        self.extra = list(extra)
        self.proc = None
        self.url = None

    def start(self, deadline_s=30):
        binary = os.path.join(BUILD, "quidditch")
        logf = open(self.log, "ab")
        offset = logf.tell()
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % (self.port or 0), "--data", self.data,
             "--node", self.name] + self.extra,
            stdout=logf, stderr=logf, env=self.env)
        logf.close()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("quidditch exited with %s during start:\n%s"
                                     % (self.proc.returncode, self.logtext()))
            if self.port is None:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.logtext()[offset:])
                if not m:
                    time.sleep(0.02)
                    continue
                self.port = int(m.group(1))
                self.url = "http://127.0.0.1:%d" % self.port
            try:
                r = self.http("GET", "/", timeout=1)
                if r.status in (200, 401):  # 401: up, with an auth file (test_auth.py)
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("quidditch did not answer GET / within %ss:\n%s"
                             % (deadline_s, self.logtext()))

    def logtext(self):
        try:
            with open(self.log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, deadline_s=30):
        """Send SIG and wait for the exit; returns the exit status."""
        if not self.proc:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("quidditch did not stop within %ss after %s" % (deadline_s, sig))
        self.proc = None
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self):
        if self.proc:
            self.stop()
        return self.start()

    def close(self):
        if self.proc:
            try:
                self.stop()
            except AssertionError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None and not issubclass(exc[0], Skip):  # a skip stops cleanly
            sys.stderr.write("---- server log ----\n%s\n" % self.logtext()[-6000:])
            self.close()
            return
        # A clean stop must exit 0: under ASan this also catches leaks and memory errors.
        rc = self.stop() if self.proc else 0
        log = self.logtext()
        self.close()
        if rc != 0:
            raise AssertionError("quidditch exited with %s after SIGTERM:\n%s" % (rc, log[-8000:]))
        if "ERROR: AddressSanitizer" in log or "runtime error:" in log:
            raise AssertionError("sanitizer report in the server log:\n%s" % log[-8000:])

    def http(self, method, path, body=None, ctype=None, timeout=60, headers=None):
        data = None
        headers = dict(headers or {})
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                headers["Content-Type"] = ctype or "application/json"
            elif isinstance(body, str):
                data = body.encode()
                headers["Content-Type"] = ctype or "application/json"
            else:
                data = body
                headers["Content-Type"] = ctype or "application/octet-stream"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, resp.read(), dict(resp.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), dict(e.headers))

    def bulk(self, lines, path="/_bulk?refresh=true"):
        body = "".join(json.dumps(l) + "\n" for l in lines)
        return self.http("POST", path, body, "application/x-ndjson")


def check(cond, what, *ctx):
    if not cond:
        raise AssertionError(what + "".join("\n  " + repr(c) for c in ctx))


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def close(got, want, rel=1e-6, what=""):
    if abs(got - want) > rel * max(1.0, abs(want)):
        raise AssertionError("%s: got %.9g, want %.9g" % (what, got, want))


def check_prometheus(text):
    """The text exposition format: every sample belongs to a family declared by # TYPE, values
    are numbers, histogram buckets are cumulative and end with +Inf == _count."""
    types, buckets, counts = {}, {}, {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                        r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (\S+)$')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            check(name not in types, "family declared twice: " + name)
            types[name] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = sample.match(line)
        check(m is not None, "not a sample line: %r" % line)
        name, labels, value = m.group(1), m.group(3) or "", m.group(5)
        float(value)  # raises on a non-number
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        check(name in types or (base in types and types[base] == "histogram"),
              "sample without # TYPE: %r" % line)
        if name.endswith("_bucket"):
            key = (base, re.sub(r',?le="[^"]*"', "", labels))
            le = re.search(r'le="([^"]*)"', labels).group(1)
            buckets.setdefault(key, []).append((le, float(value)))
        elif name.endswith("_count") and base in types:
            counts[(base, labels)] = float(value)
    for key, bs in buckets.items():
        vals = [v for _, v in bs]
        check(vals == sorted(vals), "histogram buckets not cumulative: %r" % (key,))
        check(bs[-1][0] == "+Inf", "histogram without +Inf: %r" % (key,))
        if key in counts:
            eq(bs[-1][1], counts[key], "+Inf bucket vs _count of %r" % (key,))


def multipart(fields):
    """fields: [(name, filename or None, content_type, bytes)] -> (body, content_type)."""
    boundary = "qdtestboundary7MA4YWxkTrZu0gW"
    out = b""
    for name, filename, ctype, data in fields:
        disp = 'form-data; name="%s"' % name
        if filename:
            disp += '; filename="%s"' % filename
        out += b"--" + boundary.encode() + b"\r\n"
        out += ("Content-Disposition: %s\r\nContent-Type: %s\r\n\r\n" % (disp, ctype)).encode()
        out += data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary


def wat2wasm(text):
    """Compile WAT TEXT with wabt's wat2wasm; None when the tool is missing."""
    tool = shutil.which("wat2wasm")
    if not tool:
        return None
    d = tempfile.mkdtemp(prefix="qd-wat-")
    try:
        src, out = os.path.join(d, "m.wat"), os.path.join(d, "m.wasm")
        with open(src, "w") as f:
            f.write(text)
        subprocess.run([tool, src, "-o", out], check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


SKIP = 77  # CTest's SKIP_RETURN_CODE for every test of the tree (tests/CMakeLists.txt)


class Skip(Exception):
    """Raised by skip(): this test cannot run here (a tool or a built example is missing)."""


def skip(why):
    """End the current test as skipped, saying why. run_tests() then exits 77, never 0."""
    raise Skip(why)


def skip_all(why):
    """The whole script cannot run here: say why and exit 77 (CTest: skipped, not passed)."""
    print("# SKIP %s" % why)
    sys.stdout.flush()
    sys.exit(SKIP)


def run_tests(tests):
    """Run each (name, fn) and print TAP. Exit 1 when any failed; else 77 when any skipped
    (skip()), so CTest reports the script skipped rather than passed; else 0."""
    print("1..%d" % len(tests))
    failed = skipped = 0
    for i, (name, fn) in enumerate(tests, 1):
        t0 = time.monotonic()
        try:
            fn()
            print("ok %d - %s (%.2fs)" % (i, name, time.monotonic() - t0))
        except Skip as e:
            skipped += 1
            print("ok %d - %s # SKIP %s" % (i, name, e))
        except Exception as e:  # report every failure, keep going
            failed += 1
            print("not ok %d - %s\n# %s" % (i, name, str(e).replace("\n", "\n# ")))
        sys.stdout.flush()
    sys.exit(1 if failed else SKIP if skipped else 0)


ETCD = "/usr/bin/etcd"


class Etcd:
    """A real etcd (Debian's etcd-server) on free loopback ports with a temp data dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="qd-etcd-")
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc = None

    def start(self, deadline_s=30):
        peer = "http://127.0.0.1:%d" % self.peer_port
        logf = open(os.path.join(self.tmp, "etcd.log"), "ab")
        self.proc = subprocess.Popen(
            [ETCD, "--data-dir", os.path.join(self.tmp, "data"), "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", peer,
             "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer],
            stdout=logf, stderr=logf)
        logf.close()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("etcd exited with %s" % self.proc.returncode)
            try:
                req = urllib.request.Request(self.url + "/v3/kv/range", data=b'{"key":"AA=="}',
                                             method="POST")
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("etcd did not answer within %ss" % deadline_s)

    def stop(self):
        """Stop etcd, keeping its data (start() again restarts it on the same ports)."""
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def close(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_for(what, fn, deadline_s=30, every_s=0.05):
    """Poll FN until it returns a true value (returned), failing after DEADLINE_S with WHAT."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except (OSError, AssertionError, KeyError, TypeError, ValueError) as e:
            last = e
        time.sleep(every_s)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))
