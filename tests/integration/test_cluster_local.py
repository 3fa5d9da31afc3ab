"""test_cluster_local.py: a coordinator that also holds shards (--role both) searches its own
shard in-process (shards.c) and the others over HTTP, with the binary partial on the wire
(wire.c). Real processes on loopback: etcd, data nodes dn1 and dn2, b1 (--role both) and c1
(--role coord). A 3-shard index lands on dn1, dn2 and b1. Checked:
  - the same queries (sorts, paging, scores, aggregations, dfs_query_then_fetch, a pinned UDF)
    give the same hits, totals and aggregations through b1 (in-process shard) as through c1
    (every shard over HTTP);
  - b1 really takes the in-process path: a search through b1 does not reach b1's own
    /_internal/search (its search count grows by one per search, not two), while one through
    c1 does, and so does one through b1 that pins a UDF (its request cannot run the UDF);
  - the request id (X-Opaque-Id) of a search on a coordinator tags the data nodes' log lines;
  - a shard request times out with the search's own timeout (plus 1 s), not after 30 s: a
    SIGSTOPped data node's shard shows up in _shards.failures while the others answer;
  - the nodes run with http_proxy and all_proxy naming a dead proxy, which their calls to each
    other and to etcd ignore.
Skipped (77) without /usr/bin/etcd."""
import json
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import (ETCD, Etcd, Server, check, eq, multipart, run_tests, skip,  # noqa: E402
                    skip_all, wait_for, wat2wasm)

MAPPINGS = {"properties": {"title": {"type": "text"}, "cat": {"type": "keyword"},
                           "price": {"type": "double"}, "n": {"type": "long"}}}
WORDS = ["red", "blue", "fast", "laptop", "phone", "bag", "old", "new"]
DOCS = [("d%d" % i, {"title": "%s %s %s" % (WORDS[i % 8], WORDS[(i * 3) % 8], WORDS[(i * 5) % 7]),
                     "cat": "abcd"[i % 4], "price": float((i * 7) % 50) + 0.5, "n": i})
        for i in range(90)]
QUERIES = [
    {"query": {"match_all": {}}, "sort": [{"n": "asc"}], "from": 5, "size": 10},
    {"query": {"match": {"title": "red laptop"}}, "size": 10},
    {"query": {"bool": {"filter": [{"term": {"cat": "b"}}]}},
     "sort": [{"price": "desc"}, {"n": "asc"}], "size": 7},
    {"size": 0, "aggs": {"cats": {"terms": {"field": "cat"}}, "p": {"stats": {"field": "price"}},
                         "h": {"histogram": {"field": "price", "interval": 10}}}},
    {"query": {"match": {"title": "fast"}}, "size": 3,
     "aggs": {"s": {"sum": {"field": "price"}}, "a": {"avg": {"field": "n"}}}},
]
C = {}


def search(node, body, query="", headers=None):
    r = node.http("POST", "/shop/_search" + query, body, headers=headers)
    eq(r.status, 200, "search on %s: %s" % (node.name, r.text[:300]))
    return r.json


def same(a, b, what):
    eq(a["hits"]["total"], b["hits"]["total"], what + ": total")
    eq([(h["_id"], h.get("_score"), h.get("sort"), h["_source"]) for h in a["hits"]["hits"]],
       [(h["_id"], h.get("_score"), h.get("sort"), h["_source"]) for h in b["hits"]["hits"]],
       what + ": hits")
    eq(a.get("aggregations"), b.get("aggregations"), what + ": aggregations")
    eq(a["_shards"], b["_shards"], what + ": _shards")


def search_count(node):
    m = re.search(r'^quidditch_search_duration_seconds_count\{[^}]*\} (\d+)$',
                  node.http("GET", "/metrics").text, re.M)
    check(m, "no search count in %s's /metrics" % node.name)
    return int(m.group(1))


# An operator's proxy settings (a dead proxy here) must not reach the calls between nodes or
# to etcd, which libcurl would otherwise send to the proxy: the nodes run with them.
DEAD_PROXY = {k: "http://127.0.0.1:9" for k in ("http_proxy", "HTTP_PROXY", "all_proxy",
                                                 "ALL_PROXY")}


def setup():
    etcd = C["etcd"] = Etcd().start()
    dbg = ["--log-level", "debug"]
    C["dn"] = [Server(name=n, extra=["--role", "data", "--etcd", etcd.url] + dbg,
                      env=DEAD_PROXY).start() for n in ("dn1", "dn2")]
    C["b1"] = Server(name="b1", extra=["--role", "both", "--etcd", etcd.url] + dbg,
                     env=DEAD_PROXY).start()
    C["c1"] = Server(name="c1", extra=["--role", "coord", "--etcd", etcd.url],
                     env=DEAD_PROXY).start()
    b1, c1 = C["b1"], C["c1"]
    wait_for("4 members", lambda: len(c1.http("GET", "/_cat/nodes?format=json").json) == 4)
    wait_for("the index is created (a leader is elected)", lambda: c1.http(
        "PUT", "/shop", {"settings": {"number_of_shards": 3, "number_of_replicas": 0},
                             "mappings": MAPPINGS}).status == 200)
    rows = c1.http("GET", "/_cat/shards?format=json").json
    eq(sorted(r["node"] for r in rows), ["b1", "dn1", "dn2"], "the shards' nodes")
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_index": "shop", "_id": i}}, d]
    r = c1.bulk(lines, "/_bulk?refresh=true")
    check(r.status == 200 and not r.json["errors"], "bulk", r.text[:300])
    wait_for("b1 sees the index", lambda: b1.http("GET", "/shop/_count").status == 200)


def test_same_hits_in_process_and_over_http():
    for q in QUERIES:
        same(search(C["b1"], q), search(C["c1"], q), json.dumps(q))
    q = {"query": {"match": {"title": "red fast"}}, "size": 20}
    same(search(C["b1"], q, "?search_type=dfs_query_then_fetch"),
         search(C["c1"], q, "?search_type=dfs_query_then_fetch"), "dfs")


def test_in_process_path_is_taken():
    b1, c1 = C["b1"], C["c1"]
    q = QUERIES[1]
    before = search_count(b1)
    for _ in range(5):
        search(b1, q)
    eq(search_count(b1) - before, 5, "b1's searches through b1 (its shard in-process)")
    before = search_count(b1)
    for _ in range(5):
        search(c1, q)
    eq(search_count(b1) - before, 5, "b1's shard searches for c1 (over HTTP)")


def test_a_pinned_udf_goes_over_http_with_the_same_hits():
    if not wat2wasm("(module)"):
        skip("no wat2wasm")
    w = wat2wasm('(module (func (export "f") (param f64 f64) (result f64) '
                 '(f64.add (local.get 0) (local.get 1))))')
    man = {"kind": "score", "returns": "f64", "export": "f",
           "params": [{"name": "s", "type": "f64", "default": "_score"},
                      {"name": "n", "type": "f64", "default": "doc['n']"}]}
    body, ctype = multipart([("manifest", None, "application/json", json.dumps(man).encode()),
                             ("wasm", "f.wasm", "application/wasm", w)])
    r = C["c1"].http("PUT", "/_udf/plusn", body, ctype)
    check(r.status == 200 and r.json["nodes_ready"] == 3, "deploy", r.text[:300])
    q = {"query": {"function_score": {"query": {"match": {"title": "red"}},
                                      "script_score": {"script": {"source": "plusn"}},
                                      "boost_mode": "replace"}}, "size": 10}
    before = search_count(C["b1"])
    a = search(C["b1"], q)
    eq(search_count(C["b1"]) - before, 2, "b1's search pinning a UDF reaches its own shard route")
    same(a, search(C["c1"], q), "udf")
    eq(a["_shards"]["failed"], 0, "udf search failures")
    check(a["hits"]["hits"][0]["_score"] > 10, "the UDF scored", a["hits"]["hits"][0])


def test_request_id_reaches_the_data_nodes():
    rid = "trace-local-7f3a"
    search(C["c1"], QUERIES[1], headers={"X-Opaque-Id": rid})
    for dn in C["dn"]:
        wait_for("[request %s] in %s's log" % (rid, dn.name),
                 lambda: "[request %s]" % rid in dn.logtext(), deadline_s=10)


def test_shard_timeout_follows_the_search():
    dn = C["dn"][0]
    os.kill(dn.proc.pid, signal.SIGSTOP)
    stat = "/proc/%d/stat" % dn.proc.pid
    wait_for("dn1 stopped", lambda: open(stat).read().rsplit(")", 1)[1].split()[0] == "T")
    try:
        # with the old fixed 30 s timeout this would not answer within the client's 8 s
        r = C["c1"].http("POST", "/shop/_search", {"query": {"match_all": {}}, "timeout": "200ms"},
                         timeout=8)
    finally:
        os.kill(dn.proc.pid, signal.SIGCONT)
    eq(r.status, 200, "search with a paused node: " + r.text[:300])
    eq(r.json["_shards"]["failed"], 1, "the paused node's shard failed: " + r.text[:400])
    eq(r.json["_shards"]["successful"], 2, "the other shards answered")
    reason = json.dumps(r.json["_shards"]["failures"])
    check("dn1" in reason, "the failure names the paused node", reason)


def main():
    if not os.access(ETCD, os.X_OK):
        skip_all("needs %s" % ETCD)
    try:
        setup()
        run_tests([("same hits in-process and over HTTP", test_same_hits_in_process_and_over_http),
                   ("the in-process path is taken", test_in_process_path_is_taken),
                   ("a pinned UDF goes over HTTP, same hits",
                    test_a_pinned_udf_goes_over_http_with_the_same_hits),
                   ("the request id reaches the data nodes", test_request_id_reaches_the_data_nodes),
                   ("shard timeouts follow the search's", test_shard_timeout_follows_the_search)])
    finally:
        for k in ("dn",):
            for s in C.get(k, []):
                s.close()
        for k in ("b1", "c1"):
            if k in C:
                C[k].close()
        if "etcd" in C:
            C["etcd"].close()


if __name__ == "__main__":
    main()
