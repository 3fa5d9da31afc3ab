"""test_auth.py: access control (issue 13 #8) against a real quidditch.
- Users (HTTP Basic) and API keys with roles: read may search, not write; write may index,
  not deploy UDFs or delete indexes; admin may do everything; no or wrong credentials are 401
  with security_exception; the auth file holds hashes only, mode 0600.
- qctl takes its key from QUIDDITCH_API_KEY.
- A node refuses to listen on a non-loopback address without an auth file (it never binds);
  without one on loopback it serves and says so at start.
- TLS: with --tls-cert/--tls-key the node answers HTTPS (a self-signed certificate made with
  openssl; skipped when openssl is missing)."""
import base64
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, Server, check, eq, run_tests  # noqa: E402

QUIDDITCH = os.path.join(BUILD, "quidditch")
QCTL = os.path.join(BUILD, "qctl")


def add(kind, name, secret, role, path):
    r = subprocess.run([QUIDDITCH, "auth", kind, name, "--role", role, "--file", path],
                       input=secret + "\n", capture_output=True, text=True)
    eq(r.returncode, 0, "quidditch auth %s %s: %s" % (kind, name, r.stderr))


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def apikey(kid, key):
    return base64.b64encode(("%s:%s" % (kid, key)).encode()).decode()


def t_roles_decide_what_each_may_do():
    d = tempfile.mkdtemp(prefix="qd-auth-")
    try:
        f = os.path.join(d, "auth.json")
        add("add-user", "reader", "reader-pass-1", "read", f)
        add("add-user", "writer", "writer-pass-1", "write", f)
        add("add-user", "root", "root-pass-123", "admin", f)
        add("add-key", "ci", "ci-secret-key-42", "write", f)
        eq(stat.S_IMODE(os.stat(f).st_mode), 0o600, "auth file mode")
        text = open(f).read()
        check("reader-pass-1" not in text and "$argon2" in text, "only hashes are stored")
        with Server(extra=["--auth-file", f]) as s:
            eq(s.http("GET", "/").status, 401, "no credentials")
            r = s.http("GET", "/", headers=basic("reader", "wrong-password"))
            eq((r.status, r.json["error"]["type"]), (401, "security_exception"), "wrong password")
            eq(s.http("GET", "/", headers=basic("nobody", "reader-pass-1")).status, 401, "no user")
            R, W, A = basic("reader", "reader-pass-1"), basic("writer", "writer-pass-1"), \
                basic("root", "root-pass-123")
            eq(s.http("PUT", "/shop", {}, headers=W).status, 403, "write cannot create an index")
            eq(s.http("PUT", "/shop", {}, headers=A).status, 200, "admin creates an index")
            r = s.http("PUT", "/shop/_doc/1?refresh=true", {"t": "laptop"}, headers=R)
            eq((r.status, r.json["error"]["type"]), (403, "security_exception"), "read cannot write")
            check("needs the [write] role" in r.text, "the reason names the role", r)
            eq(s.http("PUT", "/shop/_doc/1?refresh=true", {"t": "laptop"}, headers=W).status, 201,
               "write indexes")
            r = s.http("POST", "/shop/_search", {"query": {"match": {"t": "laptop"}}}, headers=R)
            eq((r.status, r.json["hits"]["total"]["value"]), (200, 1), "read searches")
            K = {"Authorization": "ApiKey " + apikey("ci", "ci-secret-key-42")}
            eq(s.http("PUT", "/shop/_doc/2", {"t": "bag"}, headers=K).status, 201, "API key writes")
            eq(s.http("DELETE", "/shop", headers=K).status, 403, "a write key cannot delete")
            wat = b'(module (func (export "f") (param f64) (result f64) local.get 0))'
            eq(s.http("PUT", "/_udf/f?kind=score", wat, "application/wasm", headers=W).status,
               403, "write cannot deploy a UDF")
            # qctl with QUIDDITCH_API_KEY
            env = dict(os.environ, QUIDDITCH_URL=s.url)
            r = subprocess.run([QCTL, "search", "shop", '{"query":{"match_all":{}}}'],
                               capture_output=True, text=True, env=env)
            check(r.returncode != 0, "qctl without a key fails", r.stdout, r.stderr)
            env["QUIDDITCH_API_KEY"] = apikey("ci", "ci-secret-key-42")
            r = subprocess.run([QCTL, "search", "shop", '{"query":{"match_all":{}}}'],
                               capture_output=True, text=True, env=env)
            eq(r.returncode, 0, "qctl with QUIDDITCH_API_KEY: %s %s" % (r.stdout, r.stderr))
            check("laptop" in r.stdout, "qctl got hits", r.stdout)
            check("security is off" not in s.logtext(), "no warning with an auth file")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def t_open_only_on_loopback():
    d = tempfile.mkdtemp(prefix="qd-auth-")
    try:
        r = subprocess.run([QUIDDITCH, "serve", "--listen", "0.0.0.0:0", "--data",
                            os.path.join(d, "data")], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "no auth file on 0.0.0.0: refused", r.returncode)
        check("refusing to listen on 0.0.0.0 without credentials" in r.stderr, "says why", r.stderr)
        with Server() as s:
            check("security is off" in s.logtext(), "an open loopback node says so at start")
            eq(s.http("GET", "/").status, 200, "open on loopback")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def t_tls():
    if not shutil.which("openssl"):
        print("# openssl missing: TLS case skipped")
        return
    d = tempfile.mkdtemp(prefix="qd-tls-")
    try:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        s = Server()  # started by hand: Server.start speaks plain HTTP
        try:
            log = open(s.log, "ab")
            s.proc = subprocess.Popen([QUIDDITCH, "serve", "--listen", "127.0.0.1:0", "--data",
                                       s.data, "--tls-cert", cert, "--tls-key", key],
                                      stdout=log, stderr=log)
            log.close()
            port = None
            end = time.monotonic() + 30
            while time.monotonic() < end and port is None:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", s.logtext())
                port = int(m.group(1)) if m else None
                time.sleep(0.05)
            check(port is not None, "the TLS node started", s.logtext())
            ctx = ssl.create_default_context(cafile=cert)
            ctx.check_hostname = False
            with urllib.request.urlopen("https://127.0.0.1:%d/" % port, context=ctx, timeout=10) as r:
                eq(r.status, 200, "GET / over HTTPS")
                check(json.loads(r.read())["tagline"], "a banner over HTTPS")
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5).read()
                check(False, "plain HTTP must not be answered as HTTP")
            except Exception:
                pass
        finally:
            s.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests([
        ("roles_decide_what_each_user_and_key_may_do", t_roles_decide_what_each_may_do),
        ("a_node_runs_open_only_on_loopback", t_open_only_on_loopback),
        ("tls_serves_https", t_tls),
    ])
