"""test_auth.py: access control (issue 13 #8) against a real quidditch.
- Users (HTTP Basic) and API keys with roles: read may search, not write; write may index,
  not deploy UDFs or delete indexes; admin may do everything; no or wrong credentials are 401
  with security_exception; the auth file holds hashes only, mode 0600.
- qctl takes its key from QUIDDITCH_API_KEY.
- A node refuses to listen on a non-loopback address without an auth file (it never binds);
  without one on loopback it serves and says so at start.
- TLS: with --tls-cert/--tls-key the node answers HTTPS (a self-signed certificate made with
  openssl; skipped when openssl is missing).
- API keys over REST (POST/GET/DELETE /_security/api_key, admin only): a created key works at
  once, its secret is shown once and stored only hashed, in the same file; the list never shows
  a secret; an invalidated key fails at once (also after a restart); expiration is honoured.
- The auth file is reloaded on a real SIGHUP (a user added by `quidditch auth add-user` works
  without a restart, a removed one stops), and when the file changes; a malformed file keeps
  the old credentials and logs an ERROR."""
import base64
import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, Server, check, eq, run_tests, wait_for  # noqa: E402

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


def with_auth_file(fn):
    d = tempfile.mkdtemp(prefix="qd-auth-")
    try:
        f = os.path.join(d, "auth.json")
        add("add-user", "root", "root-pass-123", "admin", f)
        add("add-user", "reader", "reader-pass-1", "read", f)
        fn(f)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def key_hdr(encoded):
    return {"Authorization": "ApiKey " + encoded}


def t_api_keys_over_rest():
    def run(f):
        A, R = basic("root", "root-pass-123"), basic("reader", "reader-pass-1")
        with Server(extra=["--auth-file", f]) as s:
            body = {"name": "ingest job", "role": "write"}
            eq(s.http("POST", "/_security/api_key", body, headers=R).status, 403,
               "a read user cannot create keys")
            eq(s.http("GET", "/_security/api_key", headers=R).status, 403, "nor list them")
            r = s.http("POST", "/_security/api_key", body, headers=A)
            eq(r.status, 200, "admin creates a key: %r" % r)
            k = r.json
            check(len(k["id"]) == 20 and len(k["api_key"]) == 22 and k["name"] == "ingest job",
                  "id, api_key, name", k)
            eq(base64.b64decode(k["encoded"]).decode(), "%s:%s" % (k["id"], k["api_key"]),
               "encoded is base64(id:api_key)")
            text = open(f).read()
            check(k["id"] in text and k["api_key"] not in text and "$argon2" in text,
                  "the same auth file holds its hash, never the secret")
            eq(stat.S_IMODE(os.stat(f).st_mode), 0o600, "still mode 0600")
            K = key_hdr(k["encoded"])
            eq(s.http("PUT", "/shop/_doc/1?refresh=true", {"t": 1}, headers=K).status, 201,
               "the new key writes at once")
            eq(s.http("DELETE", "/shop", headers=K).status, 403, "within its role only")
            bad = key_hdr(base64.b64encode(("%s:wrong-secret-22-chars" % k["id"]).encode())
                          .decode())
            eq(s.http("GET", "/", headers=bad).status, 401, "a wrong secret is refused")
            # bad bodies are 400s naming the problem, and create nothing
            for b, says in [({"role": "write"}, "[name]"),
                            ({"name": "x", "role": "root"}, "[role]"),
                            ({"name": "x"}, "[role]"),
                            ({"name": "x", "role": "read", "expiration": "soon"}, "[expiration]"),
                            ({"name": "x", "role": "read", "role_descriptors": {}},
                             "role_descriptors"),
                            ({"name": "x", "roles": ["read"], "color": 1}, "[color]")]:
                r = s.http("POST", "/_security/api_key", b, headers=A)
                check(r.status == 400 and says in r.text, "%r is refused naming %s" % (b, says), r)
            r = s.http("GET", "/_security/api_key", headers=A)
            eq(r.status, 200, "list")
            eq([x["name"] for x in r.json["api_keys"]], ["ingest job"], "one key listed")
            check(k["api_key"] not in r.text and "argon2" not in r.text and "hash" not in r.text,
                  "the list shows no secret and no hash", r)
            x = r.json["api_keys"][0]
            check(x["id"] == k["id"] and x["roles"] == ["write"] and not x["invalidated"]
                  and x["creation"] > 0 and "expiration" not in x, "its fields", x)
            # expiration: a key that expires in 2 s works, then fails (and is listed expired)
            r = s.http("POST", "/_security/api_key", {"name": "brief", "roles": ["read"],
                                                      "expiration": "2s"}, headers=A)
            eq(r.status, 200, "an expiring key")
            E = key_hdr(r.json["encoded"])
            check(r.json["expiration"] > time.time() * 1000, "its expiration is answered", r)
            eq(s.http("GET", "/", headers=E).status, 200, "before it expires")
            time.sleep(2.2)
            eq(s.http("GET", "/", headers=E).status, 401, "after it expired (though cached)")
            r = s.http("GET", "/_security/api_key?name=brief", headers=A)
            check(r.json["api_keys"][0]["expired"], "listed as expired", r)
            # invalidation
            r = s.http("DELETE", "/_security/api_key", {"ids": [k["id"]]}, headers=A)
            eq(r.status, 200, "invalidate: %r" % r)
            eq((r.json["invalidated_api_keys"], r.json["error_count"]), ([k["id"]], 0),
               "invalidated")
            eq(s.http("GET", "/", headers=K).status, 401, "an invalidated key fails at once")
            r = s.http("DELETE", "/_security/api_key", {"ids": [k["id"]]}, headers=A)
            eq(r.json["previously_invalidated_api_keys"], [k["id"]], "already invalidated")
            r = s.http("GET", "/_security/api_key?id=" + k["id"], headers=A)
            check(r.json["api_keys"][0]["invalidated"], "still listed, invalidated", r)
            eq(s.http("DELETE", "/_security/api_key", {}, headers=A).status, 400, "no selector")
            # a key created and kept across a restart; the invalidated one stays invalid
            r = s.http("POST", "/_security/api_key", {"name": "kept", "role": "admin"}, headers=A)
            KEPT = key_hdr(r.json["encoded"])
            s.stop()
            s.start()
            eq(s.http("GET", "/_security/api_key", headers=KEPT).status, 200,
               "a REST key survives a restart, admin role included")
            eq(s.http("GET", "/", headers=K).status, 401, "the invalidated one stays invalid")
            check("API key created: " in s.logtext() and "API key invalidated: " + k["id"]
                  in s.logtext(), "creation and invalidation are logged")
    with_auth_file(run)
    with Server() as s:
        r = s.http("POST", "/_security/api_key", {"name": "x", "role": "read"})
        check(r.status == 400 and "security is not enabled" in r.text,
              "an open node has no API keys", r)


def t_concurrent_key_changes_lose_nothing():
    """Six keys created at once over REST while `quidditch auth add-key` writes the same file:
    every key is in the file afterwards and works (the read-modify-writes are serialised by the
    file lock)."""
    import threading

    def run(f):
        A = basic("root", "root-pass-123")
        with Server(extra=["--auth-file", f]) as s:
            got, errs = [], []

            def create(i):
                r = s.http("POST", "/_security/api_key", {"name": "k%d" % i, "role": "read"},
                           headers=A)
                (got if r.status == 200 else errs).append(r.json if r.status == 200 else r)
            th = [threading.Thread(target=create, args=(i,)) for i in range(6)]
            for t in th:
                t.start()
            add("add-key", "cli", "cli-secret-key-9", "read", f)
            for t in th:
                t.join()
            eq(errs, [], "every create succeeded")
            stored = json.load(open(f))["api_keys"]
            for k in got:
                check(k["id"] in stored, "key %s is in the file" % k["name"], sorted(stored))
            check("cli" in stored, "the CLI's key is in the file too", sorted(stored))
            s.proc.send_signal(signal.SIGHUP)
            wait_for("the reload", lambda: "reloaded (SIGHUP): 2 users, 7 API keys" in s.logtext())
            for k in got:
                eq(s.http("GET", "/", headers=key_hdr(k["encoded"])).status, 200,
                   "key %s works" % k["name"])
            eq(s.http("GET", "/", headers={"Authorization": "ApiKey " + apikey(
                "cli", "cli-secret-key-9")}).status, 200, "the CLI's key works")
    with_auth_file(run)


def t_reload_on_sighup():
    def run(f):
        A = basic("root", "root-pass-123")
        with Server(extra=["--auth-file", f]) as s:
            eq(s.http("GET", "/", headers=A).status, 200, "root works")
            good = open(f).read()
            # a user added to the file by another process works after SIGHUP
            add("add-user", "late", "late-pass-123", "read", f)
            s.proc.send_signal(signal.SIGHUP)
            wait_for("the reload is logged",
                     lambda: "reloaded (SIGHUP): 3 users, 0 API keys" in s.logtext())
            eq(s.http("GET", "/", headers=basic("late", "late-pass-123")).status, 200,
               "the added user works without a restart")
            # a malformed file: ERROR, the old credentials stay
            with open(f, "w") as out:
                out.write('{"users": {"root": ')
            s.proc.send_signal(signal.SIGHUP)
            wait_for("the failed reload is an ERROR",
                     lambda: re.search(r" ERROR: auth file .* not reloaded \(SIGHUP\), the old "
                                       r"credentials stay: auth file .*line", s.logtext()))
            eq(s.http("GET", "/", headers=A).status, 200, "root still works")
            eq(s.http("GET", "/", headers=basic("late", "late-pass-123")).status, 200,
               "and the late user (the old set stays whole)")
            # the old file back, without the late user: it stops working after SIGHUP,
            # though its header was verified (and cached) before
            with open(f, "w") as out:
                out.write(good)
            s.proc.send_signal(signal.SIGHUP)
            wait_for("reloaded with 2 users",
                     lambda: "reloaded (SIGHUP): 2 users, 0 API keys" in s.logtext())
            eq(s.http("GET", "/", headers=basic("late", "late-pass-123")).status, 401,
               "a removed user stops working at once")
            eq(s.http("GET", "/", headers=A).status, 200, "root works")
            check(s.proc.poll() is None, "SIGHUP does not stop the node")
    with_auth_file(run)


def t_reload_when_the_file_changes():
    """Without a signal: the node notices a changed auth file within a refresh interval."""
    def run(f):
        with Server(extra=["--auth-file", f]) as s:
            add("add-key", "ci", "ci-secret-key-42", "write", f)
            wait_for("the change is noticed",
                     lambda: "reloaded (the file changed): 2 users, 1 API keys" in s.logtext())
            K = {"Authorization": "ApiKey " + apikey("ci", "ci-secret-key-42")}
            eq(s.http("PUT", "/w/_doc/1", {"a": 1}, headers=K).status, 201, "the new key works")
    with_auth_file(run)


if __name__ == "__main__":
    run_tests([
        ("roles_decide_what_each_user_and_key_may_do", t_roles_decide_what_each_may_do),
        ("a_node_runs_open_only_on_loopback", t_open_only_on_loopback),
        ("tls_serves_https", t_tls),
        ("api_keys_over_rest", t_api_keys_over_rest),
        ("concurrent_key_changes_lose_nothing", t_concurrent_key_changes_lose_nothing),
        ("reload_on_sighup", t_reload_on_sighup),
        ("reload_when_the_file_changes", t_reload_when_the_file_changes),
    ])
