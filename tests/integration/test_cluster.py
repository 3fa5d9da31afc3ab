"""test_cluster.py: the cluster with real processes on loopback: etcd + 3 data nodes + 2
coordinators, a 3-shard index. The same corpus and queries give the same hits, totals and
aggregations as the embedded default; documents land on the shard Elasticsearch's routing
names (murmur3 of the UTF-16 _id, computed here independently); a UDF deploy reaches every
data node and, while searches run, a v2 deploy never gives a response that mixes versions; a
node that lacks a pinned version fails that shard with the reason; a killed data node shows
up in _shards.failures while the other shards answer, and when restarted it syncs the current
UDF from etcd before it serves; a killed coordinator leaves the other serving (and leading);
etcd restarted: nodes reconnect (the watches resume, leases are renewed or re-granted);
a node name clash and an unreachable etcd are refused at start with their exit codes.
Skipped (77) without /usr/bin/etcd."""
import base64
import json
import os
import struct
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import (BUILD, ETCD, Etcd, Server, check, close, eq, free_port,  # noqa: E402
                    multipart, run_tests, wait_for, wat2wasm)

TTL = "2"  # seconds: a killed node leaves the cluster quickly
MAPPINGS = {"properties": {"title": {"type": "text"}, "cat": {"type": "keyword"},
                           "price": {"type": "double"}, "n": {"type": "long"}}}
WORDS = ["red", "blue", "fast", "laptop", "phone", "bag", "old", "new"]
DOCS = [("d%d" % i, {"title": "%s %s %s" % (WORDS[i % 8], WORDS[(i * 3) % 8], WORDS[(i * 5) % 7]),
                     "cat": "abcd"[i % 4], "price": float((i * 7) % 50) + 0.5, "n": i})
        for i in range(60)]
QUERIES = [
    {"query": {"match_all": {}}, "sort": [{"n": "asc"}], "from": 5, "size": 10},
    {"query": {"bool": {"filter": [{"term": {"cat": "b"}}]}},
     "sort": [{"price": "desc"}, {"n": "asc"}], "size": 7},
    {"query": {"range": {"price": {"gte": 10, "lt": 30}}}, "sort": [{"n": "desc"}], "size": 100},
    {"size": 0, "aggs": {"cats": {"terms": {"field": "cat"}}, "p": {"stats": {"field": "price"}},
                         "avgp": {"avg": {"field": "price"}}, "mx": {"max": {"field": "n"}},
                         "mn": {"min": {"field": "price"}},
                         "h": {"histogram": {"field": "price", "interval": 10}}}},
    {"query": {"term": {"cat": "c"}}, "size": 3, "sort": [{"n": "asc"}],
     "aggs": {"s": {"sum": {"field": "price"}}}},
    # issue 12 §4: the new aggregations merge across shards as one shard computes them
    {"size": 0, "aggs": {"card": {"cardinality": {"field": "n"}},
                         "hll": {"cardinality": {"field": "n", "precision_threshold": 10}},
                         "cc": {"cardinality": {"field": "cat"}},
                         "pct": {"percentiles": {"field": "price", "percents": [10, 50, 90]}},
                         "pr": {"percentile_ranks": {"field": "price", "values": [20.5]}},
                         "es": {"extended_stats": {"field": "price"}},
                         "comp": {"composite": {"size": 5, "sources": [
                             {"c": {"terms": {"field": "cat"}}},
                             {"h": {"histogram": {"field": "price", "interval": 10}}}]}},
                         "top": {"terms": {"field": "cat"}, "aggs": {"th": {"top_hits": {
                             "size": 2, "sort": [{"n": "desc"}], "_source": ["n"]}}}},
                         "r": {"range": {"field": "price", "ranges": [{"to": 20}, {"from": 20}]},
                               "aggs": {"c": {"cardinality": {"field": "cat"}}}},
                         "f": {"filters": {"filters": {"b": {"term": {"cat": "b"}}}, "other_bucket": True}},
                         "g": {"global": {}, "aggs": {"m": {"max": {"field": "n"}}}}}},
]
KONST_WAT = """(module
  (func (export "konst") (param $s f64) (result f64) (f64.const %s)))"""
KONST_MANIFEST = {"kind": "score", "params": [{"name": "s", "type": "f64", "default": "_score"}],
                  "returns": "f64"}

C = {}  # the cluster: etcd, data nodes, coordinators, the embedded reference


def murmur3_32(data, seed=0):
    """MurmurHash3 x86_32, an independent implementation for the routing check."""
    c1, c2, h, n = 0xcc9e2d51, 0x1b873593, seed, len(data)
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & 0xffffffff  # noqa: E731
    for i in range(0, n - n % 4, 4):
        k = struct.unpack_from("<I", data, i)[0]
        k = rotl((k * c1) & 0xffffffff, 15) * c2 & 0xffffffff
        h = (rotl(h ^ k, 13) * 5 + 0xe6546b64) & 0xffffffff
    tail, k = data[n - n % 4:], 0
    for j in range(len(tail) - 1, -1, -1):
        k = (k << 8) | tail[j]
    if tail:
        h ^= rotl((k * c1) & 0xffffffff, 15) * c2 & 0xffffffff
    h ^= n
    for s, m in ((16, 0x85ebca6b), (13, 0xc2b2ae35), (16, None)):
        h ^= h >> s
        if m:
            h = (h * m) & 0xffffffff
    return h


def es_shard(routing, nshards):
    h = murmur3_32(routing.encode("utf-16-le"))
    h = h - (1 << 32) if h >= 1 << 31 else h
    return h % nshards  # Python's % is Java's floorMod for a positive divisor


def data_node(name, etcd):
    return Server(name=name, extra=["--role", "data", "--etcd", etcd.url, "--lease-ttl", TTL])


def coordinator(name, etcd):
    return Server(name=name, extra=["--role", "coord", "--etcd", etcd.url, "--lease-ttl", TTL])


def members(s):
    r = s.http("GET", "/_cat/nodes?format=json")
    return sorted(row["name"] for row in r.json) if r.status == 200 else []


def setup():
    etcd = Etcd().start()
    C["etcd"] = etcd
    C["data"] = [data_node("dn%d" % i, etcd).start() for i in (1, 2, 3)]
    C["coord"] = [coordinator("co%d" % i, etcd).start() for i in (1, 2)]
    for co in C["coord"]:
        wait_for("5 members seen by " + co.name,
                 lambda co=co: members(co) == ["co1", "co2", "dn1", "dn2", "dn3"])
    C["ref"] = Server(name="embedded").start()
    co = C["coord"][0]
    wait_for("a leader", lambda: any(r["master"] == "*" for r in
                                     co.http("GET", "/_cat/nodes?format=json").json))
    r = co.http("PUT", "/products", {"settings": {"number_of_shards": 3, "number_of_replicas": 0},
                                      "mappings": MAPPINGS})
    eq(r.status, 200, "create the 3-shard index: %r" % r)
    r = C["ref"].http("PUT", "/products", {"mappings": MAPPINGS})
    eq(r.status, 200, "create the embedded index")
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_index": "products", "_id": i}}, d]
    for s in (C["coord"][1], C["ref"]):  # the non-leader coordinator writes
        r = s.bulk(lines)
        eq(r.status, 200, "bulk on %s" % s.name)
        check(not r.json["errors"], "bulk errors", r)
        eq([it["index"]["_id"] for it in r.json["items"]], [i for i, _ in DOCS], "item order")
        eq({it["index"]["_index"] for it in r.json["items"]}, {"products"}, "items' _index")


def t_shards_on_distinct_nodes_routed_as_elasticsearch():
    co = C["coord"][0]
    rows = co.http("GET", "/_cat/shards?format=json").json
    eq(len(rows), 3, "shards")
    eq(sorted(r["node"] for r in rows), ["dn1", "dn2", "dn3"], "one shard per data node")
    want = [0, 0, 0]
    for i, _ in DOCS:
        want[es_shard(i, 3)] += 1
    got = [0, 0, 0]
    for r in rows:
        got[int(r["shard"])] = int(r["docs"])
    eq(got, want, "documents per shard vs Elasticsearch's routing")
    h = co.http("GET", "/_cluster/health").json
    eq((h["status"], h["number_of_nodes"], h["number_of_data_nodes"], h["active_shards"],
        h["unassigned_shards"]), ("green", 5, 3, 3, 0), "health")
    text = co.http("GET", "/_cat/indices?v").text.splitlines()
    check(text[0].split()[:7] == ["health", "status", "index", "uuid", "pri", "rep", "docs.count"],
          "_cat/indices header", text)
    check(text[1].split()[0] == "green" and text[1].split()[4:7] == ["3", "0", "60"],
          "_cat/indices row", text)
    r = C["coord"][1].http("GET", "/products/_doc/d17")
    eq((r.status, r.json["_index"], r.json["_source"]["n"]), (200, "products", 17), "get by id")


def strip(res):
    """What must agree between the cluster and the embedded default."""
    hits = res["hits"]
    out = {"total": hits["total"], "hits": [(h["_id"], h.get("sort")) for h in hits["hits"]]}
    if "aggregations" in res:
        out["aggs"] = res["aggregations"]
    return out


def same(a, b, what):
    if isinstance(a, float) or isinstance(b, float):
        close(a, b, 1e-9, what)
    elif isinstance(a, dict) and isinstance(b, dict):
        eq(sorted(a), sorted(b), what + " keys")
        for k in a:
            same(a[k], b[k], what + "." + k)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        eq(len(a), len(b), what + " length")
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (what, i))
    else:
        eq(a, b, what)


def want_hits(q):
    r = C["ref"].http("POST", "/products/_search", q)
    eq(r.status, 200, "embedded %r" % q)
    return r.json["hits"]["hits"]


def t_same_answers_as_the_embedded_default():
    for n, q in enumerate(QUERIES):
        want = C["ref"].http("POST", "/products/_search", q)
        eq(want.status, 200, "embedded query %d" % n)
        for co in C["coord"]:
            got = co.http("POST", "/products/_search", q)
            eq(got.status, 200, "query %d on %s: %r" % (n, co.name, got))
            eq(got.json["_shards"], {"total": 3, "successful": 3, "skipped": 0, "failed": 0},
               "_shards")
            same(strip(got.json), strip(want.json), "query %d on %s" % (n, co.name))
    # a scored query: the same documents and total (scores use per-shard statistics)
    q = {"query": {"match": {"title": "red laptop"}}, "size": 100}
    want, got = C["ref"].http("POST", "/products/_search", q), \
        C["coord"][0].http("POST", "/products/_search", q)
    eq(got.json["hits"]["total"], want.json["hits"]["total"], "scored total")
    eq(sorted(h["_id"] for h in got.json["hits"]["hits"]),
       sorted(h["_id"] for h in want.json["hits"]["hits"]), "scored hits")
    # dfs_query_then_fetch: the shards' term statistics first, so scores equal one shard's
    for q in (q, {"query": {"bool": {"should": [{"match": {"title": "blue phone"}},
                                               {"term": {"cat": "d"}}]}}, "size": 100}):
        want = {h["_id"]: h["_score"] for h in want_hits(q)}
        got = C["coord"][0].http("POST", "/products/_search?search_type=dfs_query_then_fetch", q)
        eq(got.status, 200, "dfs search: %r" % got)
        eq(got.json["_shards"]["successful"], 3, "dfs _shards")
        eq(sorted(h["_id"] for h in got.json["hits"]["hits"]), sorted(want), "dfs hits")
        for h in got.json["hits"]["hits"]:
            close(h["_score"], want[h["_id"]], 1e-6, "dfs score of " + h["_id"])
        plain = C["coord"][0].http("POST", "/products/_search", q).json["hits"]["hits"]
        check(any(abs(h["_score"] - want[h["_id"]]) > 1e-6 for h in plain),
              "without dfs some score differs (else the test proves nothing)")
    nd = "".join(json.dumps(x) + "\n" for x in ({}, q, {"search_type": "dfs_query_then_fetch"}, q))
    r = C["coord"][1].http("POST", "/products/_msearch?search_type=dfs_query_then_fetch", nd,
                           "application/x-ndjson")
    eq(r.status, 200, "dfs _msearch")
    for h in r.json["responses"][0]["hits"]["hits"]:
        close(h["_score"], want[h["_id"]], 1e-6, "dfs _msearch score of " + h["_id"])
    eq(r.json["responses"][1]["status"], 200, "a header's search_type equal to the URL's")
    r = C["coord"][1].http("POST", "/products/_msearch", nd, "application/x-ndjson")
    eq([x["status"] for x in r.json["responses"]], [200, 400],
       "a header's search_type that the URL does not give is refused, naming it")
    check("search_type" in json.dumps(r.json["responses"][1]), "named", r.json)
    r = C["coord"][0].http("POST", "/products/_search?search_type=scan", {})
    eq(r.status, 400, "an unknown search_type is refused")
    check("scan" in r.text, "the refusal names it", r.text)
    for q in ({}, {"query": {"term": {"cat": "a"}}}):
        eq(C["coord"][1].http("POST", "/products/_count", q).json["count"],
           C["ref"].http("POST", "/products/_count", q).json["count"], "count %r" % q)


def t_new_aggregations_merge_across_three_shards():
    """cardinality, percentiles, composite and top_hits through a coordinator, against the
    answers computed here (the comparison with the embedded index is in QUERIES)"""
    co = C["coord"][0]
    q = {"size": 0, "aggs": {"card": {"cardinality": {"field": "price"}},
                             "pct": {"percentiles": {"field": "n", "percents": [25, 50, 75]}},
                             "top": {"top_hits": {"size": 3, "sort": [{"price": "desc"}]}}}}
    r = co.http("POST", "/products/_search", q)
    eq(r.status, 200, "search: %r" % r)
    a = r.json["aggregations"]
    eq(a["card"]["value"], len({d["price"] for _, d in DOCS}), "cardinality over 3 shards")
    ns = sorted(d["n"] for _, d in DOCS)
    for k, v in a["pct"]["values"].items():  # exact: Hazen's rank q*n - 1/2 (60 values)
        h = float(k) / 100 * len(ns) - 0.5
        i = int(h)
        close(v, ns[i] + (h - i) * (ns[i + 1] - ns[i]), 1e-9, "percentile " + k)
    want = sorted(DOCS, key=lambda x: (-x[1]["price"], x[0]))[:3]
    eq([h["_source"]["price"] for h in a["top"]["hits"]["hits"]], [d["price"] for _, d in want],
       "top_hits by price over 3 shards")
    eq(a["top"]["hits"]["total"]["value"], len(DOCS), "top_hits total")
    # composite: every page through after_key, as one list
    want = {}
    for _, d in DOCS:
        k = (d["cat"], d["n"] // 7 * 7)
        want[k] = want.get(k, 0) + 1
    got, after = [], None
    for _ in range(100):
        body = {"size": 0, "aggs": {"c": {"composite": {"size": 4, "sources": [
            {"cat": {"terms": {"field": "cat"}}}, {"n": {"histogram": {"field": "n", "interval": 7}}}]}}}}
        if after:
            body["aggs"]["c"]["composite"]["after"] = after
        c = co.http("POST", "/products/_search", body).json["aggregations"]["c"]
        if not c["buckets"]:
            break
        got += [((b["key"]["cat"], int(b["key"]["n"])), b["doc_count"]) for b in c["buckets"]]
        after = c["after_key"]
    eq(got, sorted(want.items()), "composite pages over 3 shards")


def deploy(co, k):
    w = wat2wasm(KONST_WAT % k)
    body, ctype = multipart([("manifest", None, "application/json",
                              json.dumps(KONST_MANIFEST).encode()),
                             ("wasm", "konst.wasm", "application/wasm", w)])
    return co.http("PUT", "/_udf/konst", body, ctype)


KONST_Q = {"query": {"function_score": {"query": {"match_all": {}}, "boost_mode": "replace",
                                        "script_score": {"script": {"source": "konst"}}}},
           "size": 100}


def scores(co):
    r = co.http("POST", "/products/_search", KONST_Q)
    eq(r.status, 200, "UDF search: %r" % r)
    return r.json["_shards"]["successful"], {h["_score"] for h in r.json["hits"]["hits"]}


def t_udf_deploy_reaches_every_node_and_searches_never_mix_versions():
    if not wat2wasm("(module)"):
        print("# SKIP wat2wasm not installed")
        return
    r = deploy(C["coord"][0], "1")
    eq(r.status, 200, "deploy v1: %r" % r)
    eq((r.json["version"], r.json["nodes_ready"], sorted(r.json["nodes"])),
       (1, 3, ["dn1", "dn2", "dn3"]), "deploy v1 reached every data node")
    check(all(v["status"] == "ready" for v in r.json["nodes"].values()), "ready", r.json)
    eq(scores(C["coord"][1]), (3, {1.0}), "v1 scores on the other coordinator")
    again = deploy(C["coord"][0], "1").json  # the same bytes again: a new version, v2
    check(again["version"] == 2, "redeploy", again)
    r = C["coord"][0].http("POST", "/_udf/konst/_rollback", {"to": "v1"})
    eq((r.status, r.json["nodes_ready"]), (200, 3), "rollback to v1 on every node")
    # searches while versions alternating 2.0 / 1.0 are deployed (v3..v7): each response is
    # all one version
    seen, stop, errors = [], threading.Event(), []

    def searcher(co):
        while not stop.is_set():
            try:
                seen.append(scores(co))
            except AssertionError as e:
                errors.append(str(e))
    threads = [threading.Thread(target=searcher, args=(co,)) for co in C["coord"]]
    for t in threads:
        t.start()
    for n, k in enumerate(["2", "1", "2", "1", "2"]):
        r = deploy(C["coord"][n % 2], k)
        eq((r.status, r.json["version"], r.json["nodes_ready"]), (200, 3 + n, 3),
           "deploy v%d" % (3 + n))
    stop.set()
    for t in threads:
        t.join()
    eq(errors, [], "searches during the deploys")
    mixed = [s for s in seen if s[1] not in ({1.0}, {2.0}) or s[0] != 3]
    eq(mixed, [], "responses mixing versions (of %d)" % len(seen))
    print("# %d searches during 5 deploys, none mixed versions (%d all-1.0, %d all-2.0)"
          % (len(seen), sum(1 for s in seen if s[1] == {1.0}),
             sum(1 for s in seen if s[1] == {2.0})))
    eq(scores(C["coord"][0]), (3, {2.0}), "after the deploy")
    st = C["coord"][0].http("GET", "/_udf/konst").json
    eq((st["version"], sorted(st["nodes"]), {v["status"] for v in st["nodes"].values()}),
       (7, ["dn1", "dn2", "dn3"], {"ready"}), "status per node")
    # qctl ends a deploy through a coordinator with the per-node summary
    wasm = os.path.join(C["ref"].tmp, "konst.wasm")
    man = os.path.join(C["ref"].tmp, "konst.json")
    with open(wasm, "wb") as f:
        f.write(wat2wasm(KONST_WAT % "2"))
    with open(man, "w") as f:
        json.dump(KONST_MANIFEST, f)
    p = subprocess.run([os.path.join(BUILD, "qctl"), "udf", "deploy", "--name", "konst", "--wasm",
                        wasm, "--manifest", man], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, QUIDDITCH_URL=C["coord"][0].url))
    eq(p.returncode, 0, "qctl udf deploy: " + p.stdout + p.stderr)
    check("Distributed to 3 data nodes" in p.stdout and "dn3" in p.stdout, "qctl summary",
          p.stdout)


def t_udf_versions_and_test_through_a_coordinator():
    if not wat2wasm("(module)"):
        print("# SKIP wat2wasm not installed")
        return
    co = C["coord"][1]
    r = co.http("GET", "/_udf/konst/_versions")
    eq(r.status, 200, "versions: %r" % r)
    eq(([v["version"] for v in r.json["versions"]], r.json["current"]), (list(range(1, 9)), 8),
       "every version from etcd, in order")
    eq([v["version"] for v in r.json["versions"] if v["current"]], [8], "one current")
    r = co.http("POST", "/_udf/konst/_test", {"args": {"s": 0.5}})
    eq((r.status, r.json.get("version"), r.json.get("result")), (200, 8, 2.0), "test: %r" % r)
    r = co.http("POST", "/_udf/konst/_test?version=v1", {"args": {"s": 0.5}})
    eq((r.status, r.json.get("version"), r.json.get("result")), (200, 1, 1.0), "test v1: %r" % r)
    r = co.http("GET", "/_udf/nope/_versions")
    eq((r.status, r.json["error"]["type"]), (404, "resource_not_found_exception"),
       "an unknown UDF, typed by the error table")


def t_coordinator_mapping_mget_and_delete_by_query():
    co = C["coord"][0]
    r = co.http("PUT", "/products/_mapping", {"properties": {"tag": {"type": "keyword"}}})
    eq(r.status, 200, "put mapping on every shard: %r" % r)
    eq(co.http("GET", "/products/_mapping").json["products"]["mappings"]["properties"]["tag"],
       {"type": "keyword"}, "the mapping has the new field")
    for dn in C["data"]:  # every shard took it
        for row in dn.http("GET", "/_cat/indices?format=json").json:
            if row["index"].startswith("products~"):
                m = dn.http("GET", "/%s/_mapping" % row["index"]).json
                check("tag" in m[row["index"]]["mappings"]["properties"], "tag on " + row["index"])
    r = co.http("PUT", "/products/_mapping", {"properties": {"title": {"type": "long"}}})
    eq(r.status, 400, "a conflicting mapping is refused as the data node refuses it: %r" % r)
    r = co.http("POST", "/_mget", {"docs": [{"_index": "products", "_id": "d17"},
                                            {"_index": "products", "_id": "nope"},
                                            {"_index": "nosuch", "_id": "x"}]})
    eq(r.status, 200, "_mget: %r" % r)
    d = r.json["docs"]
    eq((d[0]["_index"], d[0]["found"], d[0]["_source"]["n"]), ("products", True, 17), "mget hit")
    eq((d[1]["_id"], d[1]["found"]), ("nope", False), "mget miss")
    check("error" in d[2], "mget on a missing index", d[2])
    r = co.http("POST", "/products/_mget", {"ids": ["d1", "d2", "d58"]})
    eq([x["_source"]["n"] for x in r.json["docs"]], [1, 2, 58], "_mget by ids")
    r = co.http("PUT", "/scratch", {"settings": {"number_of_shards": 3}, "mappings": MAPPINGS})
    eq(r.status, 200, "scratch index")
    r = co.http("PUT", "/scratch", {"settings": {"number_of_shards": 3}})
    eq((r.status, r.json["error"]["type"]), (400, "resource_already_exists_exception"),
       "an existing index, in Elasticsearch's shape")
    lines = []
    for i, doc in DOCS[:20]:
        lines += [{"index": {"_index": "scratch", "_id": i}}, doc]
    eq(co.bulk(lines).status, 200, "bulk into scratch")
    co.http("POST", "/scratch/_refresh")
    r = co.http("POST", "/scratch/_delete_by_query", {"query": {"term": {"cat": "a"}}})
    eq((r.status, r.json.get("deleted"), r.json.get("failures")), (200, 5, []), "dbq: %r" % r)
    co.http("POST", "/scratch/_refresh")
    eq(co.http("POST", "/scratch/_count", {}).json["count"], 15, "15 left after the dbq")
    r = co.http("POST", "/scratch/_delete_by_query", {})
    eq(r.status, 400, "a dbq without a query is refused")
    r = co.http("POST", "/nosuch/_delete_by_query", {"query": {"match_all": {}}})
    eq((r.status, r.json["error"]["type"]), (404, "index_not_found_exception"), "dbq, no index")
    eq(co.http("DELETE", "/scratch").status, 200, "drop scratch")


def t_a_shard_request_for_an_unknown_version_fails_that_shard():
    if not wat2wasm("(module)"):
        print("# SKIP wat2wasm not installed")
        return
    rows = C["coord"][0].http("GET", "/_cat/shards?format=json").json
    row = [r for r in rows if r["node"] == "dn1"][0]
    req = {"index": "products", "shard": int(row["shard"]), "count": False,
           "body": json.dumps(KONST_Q), "pins": {"konst": 99}}
    r = C["data"][0].http("POST", "/_internal/search", req)
    eq(r.status, 200, "shard request")
    check("failure" in r.json and "v99" in r.json["failure"]["reason"], "unknown version", r.json)
    r = C["data"][0].http("POST", "/_internal/search", {"index": "products"})
    eq(r.status, 400, "a malformed shard request")
    for s in (C["ref"], C["coord"][0]):  # only data nodes serve /_internal
        r = s.http("PUT", "/_internal/shard/products/0", {})
        eq(r.status, 400, "/_internal on %s" % s.name)


def t_a_killed_data_node_fails_its_shard_only_and_resyncs_on_restart():
    co, dn3 = C["coord"][0], C["data"][2]
    rows = co.http("GET", "/_cat/shards?format=json").json
    on3 = int([r for r in rows if r["node"] == "dn3"][0]["docs"])
    dn3.kill()
    q = {"query": {"match_all": {}}, "size": 100}
    r = co.http("POST", "/products/_search", q)
    eq(r.status, 200, "search with a dead node: %r" % r)
    eq((r.json["_shards"]["failed"], r.json["_shards"]["successful"]), (1, 2), "_shards")
    eq(r.json["_shards"]["failures"][0]["node"], "dn3", "the failed shard's node")
    eq(r.json["hits"]["total"]["value"], 60 - on3, "the other shards' hits")
    wait_for("dn3's lease to expire", lambda: "dn3" not in members(co))
    h = co.http("GET", "/_cluster/health").json
    eq((h["status"], h["unassigned_shards"]), ("red", 1), "health without dn3")
    if wat2wasm("(module)"):
        r = deploy(co, "3")  # v9 while dn3 is down
        eq((r.status, r.json["nodes_ready"], r.json["nodes_total"]), (200, 2, 2), "deploy v9")
    dn3.start()
    wait_for("health green again", lambda: co.http("GET", "/_cluster/health").json["status"]
             == "green")
    r = co.http("POST", "/products/_search", q)
    eq((r.json["_shards"]["successful"], r.json["hits"]["total"]["value"]), (3, 60), "dn3 back")
    if wat2wasm("(module)"):
        eq(scores(co), (3, {3.0}), "dn3 synced the current UDF before serving")


def t_a_killed_coordinator_leaves_the_other_serving_and_leading():
    co1, co2 = C["coord"]
    leader = [r["name"] for r in co2.http("GET", "/_cat/nodes?format=json").json
              if r["master"] == "*"]
    eq(leader, ["co1"], "the first coordinator leads")
    co1.kill()
    r = co2.http("POST", "/products/_search", {"size": 0})
    eq((r.status, r.json["hits"]["total"]["value"]), (200, 60), "co2 serves at once")
    wait_for("co2 to lead", lambda: co2.http("PUT", "/after", {"settings": {
        "number_of_shards": 2, "number_of_replicas": 0}}).status == 200)
    rows = co2.http("GET", "/_cat/shards?format=json").json
    eq(sorted(r["node"] for r in rows if r["index"] == "after"), ["dn1", "dn2"],
       "the new leader places shards on distinct nodes")
    co1.start()


def t_nodes_reconnect_when_etcd_restarts():
    co2 = C["coord"][1]
    # co1 was restarted by the previous test: its join must be complete (not just registered)
    wait_for("co1 back in the cluster",
             lambda: C["coord"][0].logtext().count("joined the cluster") == 2)
    C["etcd"].stop()
    r = co2.http("POST", "/products/_search", {"size": 0})  # metadata is cached: still served
    eq((r.status, r.json["hits"]["total"]["value"]), (200, 60), "a search while etcd is down")
    # down for longer than the lease: every node gives its lease up, then gets a new one
    wait_for("dn1 to notice its lease is gone", lambda: "lost" in C["data"][0].logtext())
    C["etcd"].start()
    try:
        wait_for("an index created after etcd came back",
                 lambda: co2.http("PUT", "/after-etcd", {}, timeout=5).status in (200, 400))
    except AssertionError as e:
        raise AssertionError("%s\nco2: %s\nco1: %s" % (e, co2.logtext()[-2500:],
                                                       C["coord"][0].logtext()[-1500:]))
    for co in C["coord"]:
        wait_for("every member back, seen by " + co.name,
                 lambda co=co: members(co) == ["co1", "co2", "dn1", "dn2", "dn3"])
        wait_for(co.name + " sees the new index", lambda co=co: co.http(
            "POST", "/after-etcd/_count", {}).status == 200)
    # etcd restores leases with a fresh TTL on restart, so dn1's old entry can make it look
    # back before its lease thread has registered again: wait for that, do not sample it
    wait_for("dn1 re-registered under a new lease",
             lambda: "re-registered" in C["data"][0].logtext())


def t_a_cluster_with_credentials_shares_a_secret_between_its_nodes():
    tmp = C["ref"].tmp
    auth, secret = os.path.join(tmp, "auth.json"), os.path.join(tmp, "cluster.secret")
    r = subprocess.run([os.path.join(BUILD, "quidditch"), "auth", "add-user", "root", "--role",
                        "admin", "--file", auth], input="root-pass-123\n", capture_output=True,
                       text=True)
    eq(r.returncode, 0, "quidditch auth: " + r.stderr)
    with open(secret, "w") as f:
        f.write("s3cret-shared-by-the-nodes-0123\n")
    A = {"Authorization": "Basic " + base64.b64encode(b"root:root-pass-123").decode()}
    etcd = Etcd().start()
    nodes = []
    try:
        p = subprocess.run([os.path.join(BUILD, "quidditch"), "serve", "--role", "data", "--etcd",
                            etcd.url, "--listen", "127.0.0.1:0", "--auth-file", auth, "--data",
                            os.path.join(tmp, "nosecret")], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode != 0 and "--cluster-secret-file" in p.stderr,
              "a cluster node with credentials but no secret is refused", p.returncode, p.stderr)
        sec = ["--auth-file", auth, "--cluster-secret-file", secret, "--etcd", etcd.url,
               "--lease-ttl", TTL]
        dn = Server(name="sdn1", extra=["--role", "data"] + sec).start()
        co = Server(name="sco1", extra=["--role", "coord"] + sec).start()
        nodes = [dn, co]
        def ready():
            r = co.http("GET", "/_cat/nodes?format=json", headers=A)
            rows = r.json if r.status == 200 else []
            return {x["name"] for x in rows} == {"sdn1", "sco1"} and \
                any(x["master"] == "*" for x in rows)
        wait_for("the secured coordinator sees its data node and leads", ready)
        eq(co.http("GET", "/_cat/nodes").status, 401, "the coordinator wants credentials")
        eq(co.http("PUT", "/s", {"settings": {"number_of_shards": 2}}, headers=A).status, 200,
           "create an index through the secured coordinator")
        r = co.bulk([{"index": {"_index": "s", "_id": "1"}}, {"t": "red bag"},
                     {"index": {"_index": "s", "_id": "2"}}, {"t": "blue bag"}])
        eq(r.status, 401, "bulk without credentials")
        r = co.http("POST", "/_bulk?refresh=true", '{"index":{"_index":"s","_id":"1"}}\n{"t":"red '
                    'bag"}\n{"index":{"_index":"s","_id":"2"}}\n{"t":"blue bag"}\n',
                    "application/x-ndjson", headers=A)
        check(r.status == 200 and not r.json["errors"], "bulk through the coordinator", r)
        r = co.http("POST", "/s/_search", {"query": {"match": {"t": "bag"}}}, headers=A)
        eq((r.status, r.json["hits"]["total"]["value"], r.json["_shards"]["successful"]),
           (200, 2, 2), "search through the coordinator: %r" % r)
        req = {"index": "s", "shard": 0, "count": False, "body": "{}", "pins": {}}
        r = dn.http("POST", "/_internal/search", req)
        eq((r.status, r.json["error"]["type"]), (401, "security_exception"),
           "an internal route without the secret")
        check("secret" in r.text, "the refusal says what is missing", r.text)
        eq(dn.http("POST", "/_internal/search", req, headers=A).status, 401,
           "a user's credentials are not the cluster's secret")
        eq(dn.http("POST", "/_internal/search", req, headers={
            "X-Quidditch-Cluster-Secret": "wrong-secret-of-the-same-length"}).status, 401,
           "a wrong secret")
        r = dn.http("POST", "/_internal/search", req, headers={
            "X-Quidditch-Cluster-Secret": "s3cret-shared-by-the-nodes-0123"})
        eq(r.status, 200, "the secret opens the internal route: %r" % r)
    finally:
        for s in nodes:
            s.close()
        etcd.close()


def t_bad_starts_are_refused_with_their_exit_codes():
    binary = os.path.join(BUILD, "quidditch")
    tmp = C["ref"].tmp
    p = subprocess.run([binary, "serve", "--role", "data", "--etcd", C["etcd"].url,
                        "--node-name", "dn1", "--listen", "127.0.0.1:0", "--data",
                        os.path.join(tmp, "clash")], capture_output=True, text=True, timeout=60)
    eq(p.returncode, 4, "a name clash: " + p.stderr)
    check("[dn1] is taken" in p.stderr, "clash message", p.stderr)
    dead = "http://127.0.0.1:%d" % free_port()
    p = subprocess.run([binary, "serve", "--role", "coord", "--etcd", dead, "--listen",
                        "127.0.0.1:0", "--data", os.path.join(tmp, "dead")],
                       capture_output=True, text=True, timeout=60)
    eq(p.returncode, 3, "unreachable etcd: " + p.stderr)
    check(dead in p.stderr and "unreachable" in p.stderr, "etcd message", p.stderr)
    p = subprocess.run([binary, "serve", "--role", "data"], capture_output=True, text=True)
    eq(p.returncode, 2, "--role without --etcd")


def t_phrases_and_highlight_through_a_coordinator():
    """match_phrase with dfs scores as one shard's; highlight is done by the shards at fetch"""
    for q in ({"query": {"match_phrase": {"title": {"query": "red blue", "slop": 2}}}, "size": 100,
               "highlight": {"fields": {"title": {"number_of_fragments": 0}}}},
              {"query": {"match_phrase_prefix": {"title": "blue ol"}}, "size": 100,
               "highlight": {"pre_tags": ["<b>"], "post_tags": ["</b>"], "fields": {"*": {}}}},
              {"query": {"multi_match": {"query": "fast phone", "type": "cross_fields", "fields": ["title", "cat"]}},
               "size": 100, "highlight": {"fields": [{"title": {}}]}}):
        want = {h["_id"]: h for h in want_hits(q)}
        check(want, "the embedded default matches %r" % q)
        got = C["coord"][0].http("POST", "/products/_search?search_type=dfs_query_then_fetch", q)
        eq(got.status, 200, "coordinator %r: %r" % (q, got))
        hits = got.json["hits"]["hits"]
        eq(sorted(h["_id"] for h in hits), sorted(want), "phrase hits %r" % q)
        for h in hits:
            close(h["_score"], want[h["_id"]]["_score"], 1e-6, "dfs phrase score of " + h["_id"])
            eq(h.get("highlight"), want[h["_id"]].get("highlight"), "highlight of " + h["_id"])
            check(h.get("highlight"), "a highlight for " + h["_id"], h)


def t_stored_source_reaches_the_client_as_the_embedded_default_prints_it():
    """a compact stored _source travels raw (wire tag 8) and is copied into the response; any
    other text is printed from its tree; both exactly as the embedded default prints them"""
    docs = [('{"t":"raw","n":1,"s":"caf\u00e9 \\"q\\""}', '{"t":"raw","n":1,"s":"caf\u00e9 \\"q\\""}'),
            ('{"t": "spaced", "f": 1.50}', '{"t":"spaced","f":1.5}'),
            ('{"t":"esc","k":"a\\u0041"}', '{"t":"esc","k":"aA"}')]
    nd = "".join('{"index":{"_index":"rawsrc","_id":"%d"}}\n%s\n' % (i, d)
                 for i, (d, _) in enumerate(docs))
    co = C["coord"][0]
    eq(co.http("PUT", "/rawsrc", {"settings": {"number_of_shards": 3, "number_of_replicas": 0}})
       .status, 200, "create rawsrc")
    for s in (co, C["ref"]):
        r = s.http("POST", "/_bulk?refresh=true", nd.encode(), "application/x-ndjson")
        eq(r.status, 200, "bulk rawsrc on %s: %r" % (s.name, r))
    try:
        for s in (co, C["ref"]):
            text = s.http("POST", "/rawsrc/_search", {"size": 10}).text
            for i, (_, want) in enumerate(docs):
                check('"_id":"%d","_score":1.0,"_source":%s' % (i, want) in text,
                      "doc %d's _source printed as %s on %s" % (i, want, s.name), text)
    finally:
        for s in (co, C["ref"]):
            s.http("DELETE", "/rawsrc")


def main():
    if not os.access(ETCD, os.X_OK):
        print("# SKIP %s is not installed (Debian package etcd-server)" % ETCD)
        sys.exit(77)
    code = 1
    try:
        setup()
        run_tests([
            ("shards on distinct nodes, routed as Elasticsearch",
             t_shards_on_distinct_nodes_routed_as_elasticsearch),
            ("same answers as the embedded default", t_same_answers_as_the_embedded_default),
            ("stored _source reaches the client as the embedded default prints it",
             t_stored_source_reaches_the_client_as_the_embedded_default_prints_it),
            ("phrases and highlight through a coordinator",
             t_phrases_and_highlight_through_a_coordinator),
            ("new aggregations merge across three shards", t_new_aggregations_merge_across_three_shards),
            ("udf deploy reaches every node; searches never mix versions",
             t_udf_deploy_reaches_every_node_and_searches_never_mix_versions),
            ("udf versions and test through a coordinator",
             t_udf_versions_and_test_through_a_coordinator),
            ("coordinator: mapping, mget, delete_by_query",
             t_coordinator_mapping_mget_and_delete_by_query),
            ("a shard request for an unknown version fails that shard",
             t_a_shard_request_for_an_unknown_version_fails_that_shard),
            ("a killed data node fails its shard only and resyncs on restart",
             t_a_killed_data_node_fails_its_shard_only_and_resyncs_on_restart),
            ("a killed coordinator leaves the other serving and leading",
             t_a_killed_coordinator_leaves_the_other_serving_and_leading),
            ("nodes reconnect when etcd restarts", t_nodes_reconnect_when_etcd_restarts),
            ("a cluster with credentials shares a secret between its nodes",
             t_a_cluster_with_credentials_shares_a_secret_between_its_nodes),
            ("bad starts are refused with their exit codes",
             t_bad_starts_are_refused_with_their_exit_codes),
        ])
    except SystemExit as e:
        code = e.code
    finally:
        # a clean stop exits 0 (under ASan: no leak, no memory error) and logs no sanitizer report
        for s in C.get("coord", []) + C.get("data", []) + ([C["ref"]] if "ref" in C else []):
            rc = s.stop() if s.proc else 0
            log = s.logtext()
            if rc != 0 or "ERROR: AddressSanitizer" in log or "runtime error:" in log:
                print("# %s: exit %s after SIGTERM\n# %s" % (s.name, rc,
                                                            log[-4000:].replace("\n", "\n# ")))
                code = 1
            s.close()
        if "etcd" in C:
            C["etcd"].close()
    sys.exit(code)


if __name__ == "__main__":
    main()
