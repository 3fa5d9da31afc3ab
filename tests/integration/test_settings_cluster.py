"""test_settings_cluster.py: index settings on a cluster (etcd + one data node + one
coordinator, real processes on loopback): index.max_result_window given at creation through the
coordinator bounds its searches (every shard of the index), and PUT/GET _settings on the
coordinator answer a clear 400 naming the route, changing nothing. Skipped (77) without
/usr/bin/etcd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import ETCD, Etcd, Server, check, eq, run_tests, wait_for  # noqa: E402

C = {}


def t_window_and_refusals():
    co = C["co"]
    r = co.http("PUT", "/w", {"settings": {"number_of_shards": 2,
                                           "index": {"max_result_window": 5}}})
    eq(r.status, 200, "create w: %r" % r)
    eq(co.http("PUT", "/free", {"settings": {"number_of_shards": 2}}).status, 200, "create free")
    for ix in ("w", "free"):
        lines = []
        for i in range(8):
            lines += [{"index": {"_id": str(i)}}, {"n": i}]
        r = co.bulk(lines, "/%s/_bulk?refresh=true" % ix)
        check(r.status == 200 and not r.json["errors"], "bulk into %s" % ix, r)
    r = co.http("POST", "/w/_count", {})
    eq((r.status, r.json.get("count")), (200, 8), "8 docs in w: %r" % r)
    eq(len(co.http("POST", "/w/_search", {"size": 5}).json["hits"]["hits"]), 5, "size 5 in w")
    r = co.http("POST", "/w/_search", {"size": 6})
    eq(r.status, 400, "size 6 over w's window: %r" % r)
    check("index.max_result_window" in r.json["error"]["reason"], "names the setting", r.json)
    eq(r.json["error"]["type"], "illegal_argument_exception", "its type")
    eq(len(co.http("POST", "/free/_search", {"size": 8}).json["hits"]["hits"]), 8,
       "an index without the setting keeps 10000")
    eq(co.http("POST", "/w,free/_search", {"size": 6}).status, 400, "the smaller window of two")
    for method, path, body in (("PUT", "/w/_settings", {"index": {"max_result_window": 50}}),
                               ("PUT", "/_settings", {"refresh_interval": "1s"}),
                               ("GET", "/w/_settings", None)):
        r = co.http(method, path, body)
        eq(r.status, 400, "%s %s on a coordinator: %r" % (method, path, r))
        check(path in r.json["error"]["reason"] and "coordinator" in r.json["error"]["reason"],
              "the refusal names the route", r.json)
    eq(co.http("POST", "/w/_search", {"size": 6}).status, 400, "the refused PUT changed nothing")


def main():
    if not os.access(ETCD, os.X_OK):
        print("# SKIP %s is not installed (Debian package etcd-server)" % ETCD)
        sys.exit(77)
    code = 1
    etcd = Etcd().start()
    try:
        C["dn"] = Server(name="dn1", extra=["--role", "data", "--etcd", etcd.url,
                                            "--lease-ttl", "2"]).start()
        C["co"] = Server(name="co1", extra=["--role", "coord", "--etcd", etcd.url,
                                            "--lease-ttl", "2"]).start()
        wait_for("2 members", lambda: sorted(x["name"] for x in C["co"].http(
            "GET", "/_cat/nodes?format=json").json) == ["co1", "dn1"])
        wait_for("a leader", lambda: any(x["master"] == "*" for x in C["co"].http(
            "GET", "/_cat/nodes?format=json").json))
        run_tests([("max_result_window_on_a_coordinator", t_window_and_refusals)])
    except SystemExit as e:
        code = e.code
    finally:
        for s in (C.get("co"), C.get("dn")):
            if s and s.proc:
                rc = s.stop()
                log = s.logtext()
                if rc != 0 or "ERROR: AddressSanitizer" in log or "runtime error:" in log:
                    print("# %s: exit %s\n# %s" % (s.name, rc, log[-3000:].replace("\n", "\n# ")))
                    code = 1
        etcd.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
