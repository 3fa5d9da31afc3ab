"""test_paging_cluster.py: deep pagination and result shaping through a cluster coordinator
(etcd + 2 data nodes + 1 coordinator, a 3-shard index), each answer computed here from the
documents: search_after pages (every id once, in Python's order), collapse (the best of each
group across shards), post_filter beside aggregations, terminate_after (per shard, as
Elasticsearch: the total is the sum of each shard's stop), rescore over every document. Scroll
and point in time answer 400 naming them on a coordinator. Skipped (77) without /usr/bin/etcd."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import ETCD, Etcd, Server, check, close, eq, run_tests, wait_for  # noqa: E402

MAPPINGS = {"properties": {"n": {"type": "long"}, "g": {"type": "keyword"},
                           "price": {"type": "double"}, "k": {"type": "integer"}}}
DOCS = {"c%03d" % i: {"n": (i * 37) % 300, "g": "g%d" % (i % 9), "price": float((i * 13) % 41),
                      "k": i % 4} for i in range(300)}
C = {}


def members(s):
    r = s.http("GET", "/_cat/nodes?format=json")
    return sorted(row["name"] for row in r.json) if r.status == 200 else []


def setup():
    etcd = Etcd().start()
    C["etcd"] = etcd
    ex = ["--etcd", etcd.url, "--lease-ttl", "2"]
    C["data"] = [Server(name="pdn%d" % i, extra=["--role", "data"] + ex).start() for i in (1, 2)]
    co = C["co"] = Server(name="pco", extra=["--role", "coord"] + ex).start()
    wait_for("3 members", lambda: members(co) == ["pco", "pdn1", "pdn2"])
    wait_for("a leader", lambda: any(r["master"] == "*" for r in
                                     co.http("GET", "/_cat/nodes?format=json").json))
    r = co.http("PUT", "/p", {"settings": {"number_of_shards": 3, "number_of_replicas": 0},
                              "mappings": MAPPINGS})
    eq(r.status, 200, "create: %r" % r)
    lines = []
    for i, d in DOCS.items():
        lines += [{"index": {"_index": "p", "_id": i}}, d]
    r = co.bulk(lines)
    check(r.status == 200 and not r.json["errors"], "bulk", r)


def t_search_after_collapse_post_filter():
    co = C["co"]
    want = sorted(DOCS, key=lambda i: (DOCS[i]["g"], -DOCS[i]["n"], i))
    got, after = [], None
    while True:
        body = {"size": 40, "sort": [{"g": "asc"}, {"n": "desc"}], "_source": False}
        if after:
            body["search_after"] = after
        r = co.http("POST", "/p/_search", body)
        eq(r.status, 200, "page: %r" % r)
        eq(r.json["_shards"]["successful"], 3, "three shards")
        hits = r.json["hits"]["hits"]
        if not hits:
            break
        got += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
    eq(got, want, "search_after through the coordinator")
    r = co.http("POST", "/p/_search", {"size": 20, "sort": [{"price": "desc"}, {"n": "asc"}],
                                       "collapse": {"field": "g"}})
    eq(r.status, 200, "collapse: %r" % r)
    best = {}
    for i, d in DOCS.items():
        key = (-d["price"], d["n"])
        if d["g"] not in best or key < best[d["g"]][0]:
            best[d["g"]] = (key, i)
    want = [i for _, i in sorted(best.values())]
    eq([h["_id"] for h in r.json["hits"]["hits"]], want, "collapse: one per group, best first")
    eq([h["fields"]["g"][0] for h in r.json["hits"]["hits"]], [DOCS[i]["g"] for i in want], "fields")
    r = co.http("POST", "/p/_search", {"size": 300, "sort": ["n"], "query": {"term": {"k": 1}},
                                       "post_filter": {"range": {"price": {"gte": 20}}},
                                       "aggs": {"g": {"terms": {"field": "g", "size": 20}}}})
    m = [i for i, d in DOCS.items() if d["k"] == 1]
    want = sorted((i for i in m if DOCS[i]["price"] >= 20), key=lambda i: DOCS[i]["n"])
    eq([h["_id"] for h in r.json["hits"]["hits"]], want, "post_filter hits")
    eq(r.json["hits"]["total"]["value"], len(want), "post_filter total")
    counts = {}
    for i in m:
        counts[DOCS[i]["g"]] = counts.get(DOCS[i]["g"], 0) + 1
    eq({b["key"]: b["doc_count"] for b in r.json["aggregations"]["g"]["buckets"]}, counts, "aggs")


def t_terminate_after_and_rescore():
    co = C["co"]
    r = co.http("POST", "/p/_search", {"terminate_after": 7, "size": 0})
    eq(r.status, 200, "terminate_after: %r" % r)
    eq((r.json["hits"]["total"]["value"], r.json["terminated_early"]), (21, True),
       "each of three shards stops at 7")
    base = {"function_score": {"query": {"match_all": {}}, "boost_mode": "replace",
                               "script_score": {"script": "doc['n'].value"}}}
    r = co.http("POST", "/p/_search", {"size": 15, "query": base, "rescore": {
        "window_size": 300, "query": {"rescore_query": {"script_score": {
            "query": {"term": {"k": 2}}, "script": "doc['price'].value"}},
            "query_weight": 0.1, "rescore_query_weight": 3}}})
    eq(r.status, 200, "rescore: %r" % r)
    new = {i: 0.1 * d["n"] + (3 * d["price"] if d["k"] == 2 else 0) for i, d in DOCS.items()}
    want = sorted(new, key=lambda i: -new[i])[:15]
    eq([h["_score"] for h in r.json["hits"]["hits"]],
       [h["_score"] for h in sorted(r.json["hits"]["hits"], key=lambda h: -h["_score"])], "sorted")
    for h, i in zip(r.json["hits"]["hits"], want):
        close(h["_score"], new[i], 1e-6, "rescored score of the rank of " + i)


def t_scroll_and_pit_are_refused_on_a_coordinator():
    co = C["co"]
    for method, path, body, what in (
            ("POST", "/p/_search?scroll=1m", {}, "scroll"),
            ("POST", "/_search/scroll", {"scroll_id": "x"}, "scroll"),
            ("DELETE", "/_search/scroll", {"scroll_id": "_all"}, "scroll"),
            ("POST", "/p/_pit?keep_alive=1m", None, "point in time"),
            ("DELETE", "/_pit", {"id": "x"}, "point in time"),
            ("POST", "/_search", {"pit": {"id": "x"}}, "point in time")):
        r = co.http(method, path, body)
        eq(r.status, 400, "%s %s: %r" % (method, path, r))
        check(("[%s]" % what) in r.json["error"]["reason"], "the refusal names " + what, r)


def main():
    if not os.access(ETCD, os.X_OK):
        print("# SKIP %s is not installed (Debian package etcd-server)" % ETCD)
        sys.exit(77)
    code = 1
    try:
        setup()
        run_tests([
            ("search_after, collapse, post_filter through a coordinator",
             t_search_after_collapse_post_filter),
            ("terminate_after and rescore through a coordinator", t_terminate_after_and_rescore),
            ("scroll and point in time answer 400 on a coordinator",
             t_scroll_and_pit_are_refused_on_a_coordinator),
        ])
    except SystemExit as e:
        code = e.code
    finally:
        for s in [C["co"]] * ("co" in C) + C.get("data", []):
            rc = s.stop() if s.proc else 0
            log = s.logtext()
            if rc != 0 or "ERROR: AddressSanitizer" in log or "runtime error:" in log:
                print("# %s: exit %s\n# %s" % (s.name, rc, log[-3000:].replace("\n", "\n# ")))
                code = 1
            s.close()
        if "etcd" in C:
            C["etcd"].close()
    sys.exit(code)


if __name__ == "__main__":
    main()
