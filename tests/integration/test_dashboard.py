"""test_dashboard.py: every query of deploy/grafana/quidditch.json works against a real
Prometheus (Debian's /usr/bin/prometheus) scraping a real build/quidditch every second under a
small load (an index, bulk writes, searches, function_score searches with the custom_score
example UDF from build/examples/udfs). Each panel target is evaluated through Prometheus's HTTP
API (/api/v1/query) with Grafana's variables replaced by concrete values: it must parse and
return data. The same Prometheus loads deploy/alerts.yml: every rule must evaluate healthy.
Targets that use a metric issue 13 adds on another branch (PENDING) must parse; they must also
return data once the node exports them. Prometheus runs in its own temp dir and dies with this
process (PR_SET_PDEATHSIG), so none is left behind, even on failure. Exits 77 when prometheus or
the example UDF is missing."""
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, eq, free_port, multipart, run_tests  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_deploy import PENDING  # noqa: E402  series on their way from other branches

PROMETHEUS = "/usr/bin/prometheus"
DASHBOARD = os.path.join(SOURCE, "deploy", "grafana", "quidditch.json")
ALERTS = os.path.join(SOURCE, "deploy", "alerts.yml")
# Grafana's variables as the test sets them: every node, every UDF, a 30 s rate window (the
# scrape interval here is 1 s, so 30 s holds plenty of samples).
VARS = {"$__rate_interval": "30s", "$instance": ".*", "$udf": ".*"}
# Panels whose value is NaN while this build has no native tier: the native-code cache sees no
# lookups, so hits / (hits + misses) is 0/0. Data (a series) must still come back.
NAN_OK = {"Native-code cache hit rate"}
DOCS = [("1", {"title": "fast laptop", "price": 999.0, "days_since_created": 3}),
        ("2", {"title": "laptop bag", "price": 30.0, "days_since_created": 120}),
        ("3", {"title": "gaming laptop with laptop stand", "price": 1500.0}),
        ("4", {"title": "phone case", "price": 12.0, "days_since_created": 40})]


def udf_wasm():
    paths = sorted(glob.glob(os.path.join(BUILD, "examples", "udfs", "custom_score.*.wasm")))
    wat = [p for p in paths if p.endswith(".wat.wasm")]
    return (wat or paths or [None])[0]


def die_with_parent():
    # Runs in the child between fork and exec: SIGKILL it when this (parent) process exits.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Prometheus:
    """A real Prometheus on a free loopback port, scraping TARGET every second, with its own
    storage in a temp dir; stop() kills it and removes the dir."""

    def __init__(self, target):
        self.tmp = tempfile.mkdtemp(prefix="qd-prom-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(self.tmp, "prometheus.log")
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "rule_files:\n  - %s\n"
                    "scrape_configs:\n  - job_name: quidditch\n"
                    "    static_configs:\n      - targets: ['%s']\n" % (json.dumps(ALERTS), target))
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + config,
             "--storage.tsdb.path=" + os.path.join(self.tmp, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        logf.close()

    def logtext(self):
        with open(self.log, errors="replace") as f:
            return f.read()[-4000:]

    def get(self, path, params=None, timeout=10):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            check(self.proc.poll() is None, "prometheus exited with %s:\n%s"
                  % (self.proc.returncode, self.logtext()))
            try:
                if self.get("/-/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("prometheus not ready within %ss:\n%s" % (deadline_s, self.logtext()))

    def query(self, expr):
        code, body = self.get("/api/v1/query", {"query": expr})
        try:
            j = json.loads(body)
        except ValueError:
            raise AssertionError("HTTP %d, not JSON for %s: %s" % (code, expr, body[:500]))
        return code, j

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def deploy_udf(s, path):
    with open(os.path.join(SOURCE, "examples", "udfs", "custom_score", "custom_score.json"),
              "rb") as f:
        manifest = f.read()
    with open(path, "rb") as f:
        wasm = f.read()
    body, ctype = multipart([("manifest", None, "application/json", manifest),
                             ("wasm", os.path.basename(path), "application/wasm", wasm)])
    r = s.http("PUT", "/_udf/custom_score", body, ctype)
    eq(r.status, 200, "deploy custom_score: %r" % r)


def load_once(s, i):
    """One round of the small load: a write, plain searches, a UDF search, a 404."""
    r = s.http("PUT", "/shop/_doc/load-%d?refresh=true" % (i % 20),
               {"title": "load laptop %d" % i, "price": float(i % 100), "days_since_created": i})
    check(r.status in (200, 201), "index a doc", r)
    eq(s.http("POST", "/shop/_search", {"query": {"match": {"title": "laptop"}}}).status, 200,
       "search")
    eq(s.http("GET", "/shop/_search?size=3").status, 200, "GET search")
    r = s.http("POST", "/shop/_search", {"query": {"function_score": {
        "query": {"match": {"title": "laptop"}},
        "script_score": {"script": {"source": "custom_score", "params": {
            "boost_factor": 1.2, "recency_days": "_source.days_since_created",
            "user_tier": "_context.user.tier"}}},
        "boost_mode": "replace"}}, "context": {"user": {"tier": 1 + i % 3}}})
    eq(r.status, 200, "function_score with custom_score: %r" % r)
    eq(s.http("GET", "/shop/_doc/missing-%d" % i).status, 404, "a 404")


def targets(dash):
    """(panel title, expr) for every target of every panel, rows' nested panels too."""
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    walk(dash["panels"])
    return out


def concrete(expr):
    for k in sorted(VARS, key=len, reverse=True):
        expr = expr.replace(k, VARS[k])
    check("$" not in expr, "a Grafana variable the test does not know in: " + expr)
    return expr


def t_panels_against_real_prometheus():
    wasm = udf_wasm()
    with open(DASHBOARD) as f:
        dash = json.load(f)
    check(dash.get("schemaVersion", 0) >= 36, "schemaVersion >= 36", dash.get("schemaVersion"))
    ds = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    check(ds and ds[0]["query"] == "prometheus", "a Prometheus datasource variable", ds)
    with Server() as s:
        eq(s.http("PUT", "/shop", {"mappings": {"properties": {
            "title": {"type": "text"}, "price": {"type": "double"},
            "days_since_created": {"type": "integer"}}}}).status, 200, "create index")
        lines = []
        for i, d in DOCS:
            lines += [{"index": {"_id": i}}, d]
        eq(s.bulk(lines, "/shop/_bulk?refresh=true").json["errors"], False, "bulk")
        deploy_udf(s, wasm)
        load_once(s, 0)
        metrics = s.http("GET", "/metrics").text
        exported = set(re.findall(r"^(quidditch_[a-z0-9_]+)", metrics, re.M))

        prom = Prometheus("127.0.0.1:%d" % s.port)
        stop = threading.Event()
        errors = []

        def load():
            i = 1
            while not stop.is_set():
                try:
                    load_once(s, i)
                except Exception as e:  # reported by the main thread
                    errors.append(e)
                    return
                i += 1
                stop.wait(0.05)  # a small load: two shared cores
        th = threading.Thread(target=load, daemon=True)
        try:
            prom.wait_ready()
            th.start()
            # Scraped a few times, with the load's counters moving between scrapes.
            end = time.monotonic() + 90
            while True:
                _, j = prom.query('count_over_time(up{job="quidditch"}[1m])')
                r = j.get("data", {}).get("result", [])
                if r and float(r[0]["value"][1]) >= 8:
                    break
                check(time.monotonic() < end, "prometheus did not scrape the node 8 times in 90 s",
                      j, prom.logtext())
                check(not errors, "load failed", errors)
                time.sleep(0.25)
            eq(prom.query('up{job="quidditch"}')[1]["data"]["result"][0]["value"][1], "1", "up")

            failures, pending, nan = [], [], []
            for title, expr in targets(dash):
                e = concrete(expr)
                code, j = prom.query(e)
                if code != 200 or j.get("status") != "success":
                    failures.append("%s: %s -> HTTP %d %s" % (title, e, code, j.get("error")))
                    continue
                result = j["data"]["result"]
                names = {re.sub(r"_(bucket|sum|count)$", "", n)
                         for n in re.findall(r"\bquidditch_[a-z0-9_]+", e)}
                waiting = sorted(n for n in names & PENDING
                                 if not any(x.startswith(n) for x in exported))
                if waiting:
                    pending.append("%s (%s)" % (title, ", ".join(waiting)))
                    continue
                if not result:
                    failures.append("%s: %s -> no data" % (title, e))
                    continue
                if all(r["value"][1] in ("NaN", "+Inf", "-Inf") for r in result):
                    if title in NAN_OK:
                        nan.append(title)
                    else:
                        failures.append("%s: %s -> only %r" % (title, e, result))
            # The variables' queries: label_values(EXPR, LABEL) needs EXPR to have LABEL.
            for v in dash["templating"]["list"]:
                if v["type"] != "query":
                    continue
                m = re.match(r"label_values\((.*), (\w+)\)$", v["query"]["query"])
                check(m is not None, "variable %s: not label_values(expr, label)" % v["name"], v)
                _, j = prom.query(concrete(m.group(1)))
                got = [r["metric"].get(m.group(2)) for r in j["data"]["result"]]
                if not got or None in got:
                    failures.append("variable %s: %s -> %r" % (v["name"], m.group(1), got))
            check(not failures, "%d dashboard queries failed:\n" % len(failures)
                  + "\n".join(failures))
            print("# %d targets evaluated; parse only (metric not exported yet): %s; "
                  "NaN allowed: %s" % (len(targets(dash)), "; ".join(pending) or "none",
                                       ", ".join(nan) or "none"))

            # The alert rules load into the real server and evaluate without errors.
            end = time.monotonic() + 60
            while True:
                _, body = prom.get("/api/v1/rules")
                rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
                health = {r["name"]: r["health"] for r in rules}
                if len(rules) >= 10 and all(h == "ok" for h in health.values()):
                    break
                bad = {n: h for n, h in health.items() if h not in ("ok", "unknown")}
                check(not bad, "alert rules unhealthy in prometheus", bad, rules)
                check(time.monotonic() < end, "alert rules not all evaluated in 60 s", health)
                time.sleep(0.25)
            check(not errors, "load failed", errors)
        finally:
            stop.set()
            if th.is_alive():
                th.join(timeout=30)
            prom.stop()


if __name__ == "__main__":
    if not os.access(PROMETHEUS, os.X_OK):
        print("# SKIP %s not installed (apt-get install prometheus)" % PROMETHEUS)
        sys.exit(77)
    if not os.access(os.path.join(BUILD, "quidditch"), os.X_OK):
        print("# SKIP build/quidditch not built")
        sys.exit(77)
    if not udf_wasm():
        print("# SKIP no build/examples/udfs/custom_score.*.wasm (build the udf_examples target)")
        sys.exit(77)
    run_tests([("every dashboard query parses and returns data from a real Prometheus",
                t_panels_against_real_prometheus)])
