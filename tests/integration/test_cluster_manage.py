"""test_cluster_manage.py: on a cluster coordinator (etcd + one data node + one coordinator, real
processes on loopback), each route of aliases, open/close, templates, _reindex,
_update_by_query, _explain, _cluster/stats and _nodes/stats answers a clear 400 naming itself,
and changes nothing; a scripted _update is forwarded to the document's data node, which runs it.
Skipped (77) without /usr/bin/etcd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import ETCD, Etcd, Server, check, eq, run_tests, wait_for  # noqa: E402

C = {}

ROUTES = [("POST", "/_aliases", {"actions": [{"add": {"index": "p", "alias": "a"}}]}),
          ("GET", "/_alias", None), ("GET", "/_alias/a", None), ("GET", "/p/_alias", None),
          ("PUT", "/p/_alias/a", {}), ("DELETE", "/p/_alias/a", None),
          ("POST", "/p/_close", None), ("POST", "/p/_open", None),
          ("PUT", "/_index_template/t", {"index_patterns": ["x*"]}), ("GET", "/_index_template", None),
          ("DELETE", "/_index_template/t", None),
          ("PUT", "/_component_template/c", {"template": {}}), ("GET", "/_component_template", None),
          ("POST", "/_reindex", {"source": {"index": "p"}, "dest": {"index": "q"}}),
          ("POST", "/p/_update_by_query", {"script": "ctx._source.n += 1"}),
          ("GET", "/p/_explain/1", {"query": {"match_all": {}}}),
          ("GET", "/_cluster/stats", None), ("GET", "/_nodes/stats", None),
          ("GET", "/_cat/aliases", None)]


def t_coordinator_refuses_or_serves_each_route():
    co = C["co"]
    eq(co.http("PUT", "/p", {"settings": {"number_of_shards": 2}}).status, 200, "create p")
    eq(co.http("PUT", "/p/_doc/1?refresh=true", {"n": 1}).status, 201, "a document")
    for method, path, body in ROUTES:
        r = co.http(method, path, body)
        eq(r.status, 400, "%s %s on a coordinator: %r" % (method, path, r))
        check(path in r.json["error"]["reason"] and "coordinator" in r.json["error"]["reason"],
              "the refusal names the route", r.json)
    r = co.http("POST", "/p/_search", {"explain": True})
    eq(r.status, 400, "explain: true on a coordinator")
    eq(co.http("PUT", "/_template/x", {}).status, 400, "legacy template")
    # nothing changed: p is open and has no alias
    eq(co.http("POST", "/p/_count").json["count"], 1, "p still open")
    r = co.http("POST", "/p/_update/1", {"script": {"source": "ctx._source.n += params.x",
                                                    "params": {"x": 41}}})
    eq(r.status, 200, "scripted update through the coordinator: %r" % r)
    eq(co.http("GET", "/p/_doc/1").json["_source"]["n"], 42, "the data node ran the script")


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
        run_tests([("coordinator refuses or serves each new route",
                    t_coordinator_refuses_or_serves_each_route)])
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
