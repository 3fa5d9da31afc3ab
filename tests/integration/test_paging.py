"""test_paging.py: deep pagination and result shaping against a real quidditch, with every
expected answer computed here from the documents: helpers.scan (Elastic's Python client 7.17)
and search_after over 25,000 documents (each id exactly once, in the order Python sorts them),
a point in time that does not move under concurrent writes, scroll expiry and limits,
collapse, post_filter, terminate_after and rescore (a query rescorer and a UDF one, which the
server calls for the window's documents only), and the combinations Elasticsearch refuses."""
import os
import sys
import threading
import time

SYSTEM_PYTHON = "/usr/bin/python3"
try:
    from elasticsearch import Elasticsearch, NotFoundError, helpers
except ImportError:
    if (not os.environ.get("QD_ES_REEXEC") and os.access(SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["QD_ES_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    Elasticsearch = None

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, close, eq, run_tests, skip, wat2wasm  # noqa: E402

MAPPINGS = {"properties": {"n": {"type": "long"}, "g": {"type": "keyword"},
                           "price": {"type": "double"}, "title": {"type": "text"},
                           "k": {"type": "integer"}}}
N_BIG = 25000


def big_docs():
    return {"d%05d" % i: {"n": (i * 7919) % N_BIG, "g": "g%02d" % (i % 37),
                          "price": float((i * 31) % 1000) / 10, "k": i % 11}
            for i in range(N_BIG)}


def load(s, index, docs, batch=5000):
    eq(s.http("PUT", "/" + index, {"mappings": MAPPINGS}).status, 200, "create " + index)
    items = list(docs.items())
    for o in range(0, len(items), batch):
        lines = []
        for i, d in items[o:o + batch]:
            lines += [{"index": {"_index": index, "_id": i}}, d]
        r = s.bulk(lines)
        check(r.status == 200 and not r.json["errors"], "bulk", r)


def err(r):
    return r.status, r.json["error"]["type"]


def t_scan_and_search_after_25k():
    with Server() as s:
        docs = big_docs()
        load(s, "big", docs)
        # search_after on (g asc, n desc): n is unique, so the order is total
        want = sorted(docs, key=lambda i: (docs[i]["g"], -docs[i]["n"]))
        got, after = [], None
        while True:
            body = {"size": 1000, "sort": [{"g": "asc"}, {"n": "desc"}], "_source": False}
            if after:
                body["search_after"] = after
            r = s.http("POST", "/big/_search", body)
            eq(r.status, 200, "search_after page: %r" % r)
            hits = r.json["hits"]["hits"]
            if not hits:
                break
            got += [h["_id"] for h in hits]
            after = hits[-1]["sort"]
        eq(len(got), N_BIG, "search_after: every document")
        eq(got, want, "search_after: Python's order, each id once")
        # past 10,000 with from+size is refused, as Elasticsearch
        eq(s.http("POST", "/big/_search", {"from": 9995, "size": 10}).status, 400, "window")
        # a scroll by hand: ids exactly once, total exact, the last page empty
        r = s.http("POST", "/big/_search?scroll=1m&size=3000", {"sort": ["_doc"]})
        eq(r.status, 200, "scroll: %r" % r)
        eq(r.json["hits"]["total"], {"value": N_BIG, "relation": "eq"}, "scroll total exact")
        check("sort" in r.json["hits"]["hits"][0] and len(r.json["hits"]["hits"][0]["sort"]) == 1,
              "scroll hits show the user's sort only", r.json["hits"]["hits"][0])
        sid, ids = r.json["_scroll_id"], [h["_id"] for h in r.json["hits"]["hits"]]
        while True:
            r = s.http("POST", "/_search/scroll", {"scroll_id": sid, "scroll": "1m"})
            eq(r.status, 200, "scroll page: %r" % r)
            if not r.json["hits"]["hits"]:
                break
            ids += [h["_id"] for h in r.json["hits"]["hits"]]
        eq(sorted(ids), sorted(docs), "scroll: each id exactly once")
        eq(s.http("DELETE", "/_search/scroll", {"scroll_id": [sid]}).json["num_freed"], 1, "clear")
        r = s.http("POST", "/_search/scroll", {"scroll_id": sid})
        eq(err(r), (404, "search_context_missing_exception"), "a cleared scroll")
        # the official client's helpers.scan (scroll + clear_scroll)
        if Elasticsearch is None:
            skip("Elastic's Python client is not importable (python3-elasticsearch)")
        es = Elasticsearch(["http://127.0.0.1:%d" % s.port])
        seen = [h["_id"] for h in helpers.scan(es, index="big", query={"query": {"match_all": {}}},
                                                size=1000)]
        eq(len(seen), N_BIG, "helpers.scan count")
        eq(sorted(seen), sorted(docs), "helpers.scan: each id exactly once")
        q = {"query": {"range": {"k": {"gte": 5}}}}
        seen = [h["_id"] for h in helpers.scan(es, index="big", query=q, size=777,
                                                preserve_order=True)]
        eq(sorted(seen), sorted(i for i in docs if docs[i]["k"] >= 5), "scan of a query")
        # scored scroll: by score, then the tiebreaker
        r = s.http("POST", "/big/_search?scroll=30s&size=5", {"query": {"match_all": {}}})
        check("sort" not in r.json["hits"]["hits"][0], "no sort asked: no sort shown")
        eq(s.http("DELETE", "/_search/scroll/" + r.json["_scroll_id"]).status, 200, "clear by URL")
        try:
            es.scroll(scroll_id="qds-nope", scroll="1m")
            raise AssertionError("an unknown scroll id answered")
        except NotFoundError as e:
            eq(e.error, "search_context_missing_exception", "client sees the 404 type")


def small_docs():
    return {"s%03d" % i: {"n": (i * 37) % 200, "g": "g%d" % (i % 7), "price": (i * 13) % 50 + 0.5,
                          "k": i % 5, "title": "red shoe" if i % 3 == 0 else "blue hat"}
            for i in range(200)}


def t_pit_is_stable_under_writes():
    with Server() as s:
        docs = small_docs()
        load(s, "shop", docs)
        r = s.http("POST", "/shop/_pit?keep_alive=1m")
        eq(r.status, 200, "open pit: %r" % r)
        pit = r.json["id"]
        stop = threading.Event()

        def writer():  # new documents, deletes and updates, refreshed, while the PIT pages
            i = 0
            while not stop.is_set() and i < 40:
                lines = [{"index": {"_index": "shop", "_id": "new%d" % i}}, {"n": -i, "g": "g0"},
                         {"delete": {"_index": "shop", "_id": "s%03d" % (i * 3)}},
                         {"index": {"_index": "shop", "_id": "s%03d" % (i * 3 + 1)}}, {"n": 999}]
                s.bulk(lines)
                i += 1
        t = threading.Thread(target=writer)
        t.start()
        got, after = [], None
        try:
            while True:
                body = {"size": 7, "sort": [{"n": "asc"}], "pit": {"id": pit, "keep_alive": "1m"}}
                if after:
                    body["search_after"] = after
                r = s.http("POST", "/_search", body)
                eq(r.status, 200, "pit page: %r" % r)
                eq(r.json["pit_id"], pit, "pit_id in the response")
                hits = r.json["hits"]["hits"]
                if not hits:
                    break
                eq(len(hits[0]["sort"]), 2, "the _shard_doc tiebreaker is in the sort values")
                # n from the sort values (the pinned doc values): _source is read from the
                # store at fetch time, the newest version (docs/rest-api.md)
                got += [(h["_id"], h["sort"][0]) for h in hits]
                after = hits[-1]["sort"]
                time.sleep(0.01)
        finally:
            stop.set()
            t.join()
        want = sorted(((i, d["n"]) for i, d in docs.items()), key=lambda x: x[1])
        eq(sorted(got, key=lambda x: (x[1], x[0])), sorted(want, key=lambda x: (x[1], x[0])),
           "the PIT answers the documents as they were when it opened")
        eq([n for _, n in got], sorted(n for _, n in got), "in sort order")
        eq((s.http("GET", "/shop/_doc/new0").status, s.http("GET", "/shop/_doc/s000").status),
           (200, 404), "the writes happened")
        r = s.http("POST", "/shop/_search", {"pit": {"id": pit}})
        eq(err(r), (400, "action_request_validation_exception"), "an index with a pit")
        r = s.http("POST", "/_search", {"pit": {"id": pit, "nope": 1}})
        eq(err(r), (400, "x_content_parse_exception"), "an unknown pit key")
        check("nope" in r.json["error"]["reason"], "names it", r)
        r = s.http("DELETE", "/_search/scroll", {"nope": 1})
        eq(err(r), (400, "x_content_parse_exception"), "an unknown clear_scroll key")
        check("nope" in r.json["error"]["reason"], "names it", r)
        eq(s.http("DELETE", "/_pit", {"id": pit}).json, {"succeeded": True, "num_freed": 1}, "close")
        r = s.http("POST", "/_search", {"pit": {"id": pit}})
        eq(err(r), (404, "search_context_missing_exception"), "a closed pit")
        eq(s.http("DELETE", "/_pit", {"id": pit}).status, 404, "closing twice")
        r = s.http("POST", "/shop/_search", {"sort": ["_shard_doc"]})
        eq(err(r), (400, "illegal_argument_exception"), "_shard_doc without a pit")
        eq(s.http("POST", "/shop/_pit").status, 400, "keep_alive is required")
        eq(s.http("POST", "/shop/_pit?keep_alive=2d").status, 400, "keep_alive over 1d")
        eq(s.http("POST", "/nope/_pit?keep_alive=1m").status, 404, "pit on a missing index")


def t_scroll_expiry_and_limits():
    with Server() as s:
        load(s, "shop", small_docs())
        r = s.http("POST", "/shop/_search?scroll=1s&size=10", {})
        eq(r.status, 200, "scroll: %r" % r)
        sid = r.json["_scroll_id"]
        eq(s.http("POST", "/_search/scroll", {"scroll_id": sid}).status, 200, "a live scroll")
        time.sleep(1.3)
        r = s.http("POST", "/_search/scroll", {"scroll_id": sid})
        eq(err(r), (404, "search_context_missing_exception"), "an expired scroll: %r" % r)
        for body, what in (({"from": 5}, "from"), ({"search_after": [1]}, "search_after"),
                           ({"collapse": {"field": "g"}}, "collapse"),
                           ({"track_total_hits": False}, "track_total_hits")):
            r = s.http("POST", "/shop/_search?scroll=1m", body)
            eq(r.status, 400, "scroll with %s" % what)
            check(what in r.json["error"]["reason"], "the refusal names " + what, r)
        eq(s.http("POST", "/shop/_search?scroll=banana", {}).status, 400, "a bad keep_alive")
        eq(s.http("DELETE", "/_search/scroll", {"scroll_id": "_all"}).status, 404, "none left")
        r = s.http("POST", "/shop/_search?scroll=1m", {"query": {"nope": {}}})
        eq(err(r), (400, "parsing_exception"), "a scroll of a bad query (leaves no context)")
        ids = []
        for i in range(500):
            r = s.http("POST", "/shop/_search?scroll=1m&size=1", {})
            eq(r.status, 200, "scroll %d" % i)
            ids.append(r.json["_scroll_id"])
        r = s.http("POST", "/shop/_search?scroll=1m&size=1", {})
        eq(err(r), (429, "es_rejected_execution_exception"), "the 501st scroll context")
        r = s.http("DELETE", "/_search/scroll", {"scroll_id": "_all"})
        eq(r.json, {"succeeded": True, "num_freed": 500}, "clear _all")
        eq(s.http("POST", "/shop/_search?scroll=1m&size=1", {}).status, 200, "room again")


def by_score_then_doc(scored):
    """[(id, score)] in index order -> ids best first (ties by index order, as Lucene)"""
    return [i for i, _ in sorted(enumerate(scored), key=lambda x: (-x[1][1], x[0]))]


def t_collapse_post_filter_terminate_after():
    with Server() as s:
        docs = small_docs()
        load(s, "shop", docs)
        order = list(docs)  # index order
        # collapse on a keyword: each group's best by n desc, groups by that
        r = s.http("POST", "/shop/_search", {"size": 5, "sort": [{"n": "desc"}],
                                             "collapse": {"field": "g"}})
        eq(r.status, 200, "collapse: %r" % r)
        best = {}
        for i in order:
            g = docs[i]["g"]
            if g not in best or docs[i]["n"] > docs[best[g]]["n"]:
                best[g] = i
        want = sorted(best.values(), key=lambda i: -docs[i]["n"])[:5]
        eq([h["_id"] for h in r.json["hits"]["hits"]], want, "collapse on g")
        eq([h["fields"]["g"] for h in r.json["hits"]["hits"]], [[docs[i]["g"]] for i in want],
           "fields.g")
        eq(r.json["hits"]["total"]["value"], 200, "total counts documents, not groups")
        # collapse on a number, by score (a term query), ties by index order
        r = s.http("POST", "/shop/_search", {"size": 10, "query": {"term": {"g": "g1"}},
                                             "collapse": {"field": "k"}})
        seen, want = set(), []
        for i in order:
            if docs[i]["g"] == "g1" and docs[i]["k"] not in seen:
                seen.add(docs[i]["k"])
                want.append(i)
        eq([h["_id"] for h in r.json["hits"]["hits"]], want, "collapse on k, equal scores")
        r = s.http("POST", "/shop/_search", {"collapse": {"field": "g", "inner_hits": {}}})
        eq(r.status, 400, "inner_hits")
        check("inner_hits" in r.json["error"]["reason"], "names inner_hits", r)
        eq(s.http("POST", "/shop/_search", {"collapse": {"field": "title"}}).status, 400, "text")
        eq(s.http("POST", "/shop/_search", {"collapse": {"field": "nope"}}).status, 400, "unmapped")
        # post_filter: hits filtered, aggregations not
        r = s.http("POST", "/shop/_search", {
            "size": 100, "query": {"range": {"n": {"lt": 100}}}, "sort": ["n"],
            "post_filter": {"term": {"g": "g3"}}, "aggs": {"g": {"terms": {"field": "g"}}}})
        eq(r.status, 200, "post_filter: %r" % r)
        m = [i for i in order if docs[i]["n"] < 100]
        want = sorted((i for i in m if docs[i]["g"] == "g3"), key=lambda i: docs[i]["n"])
        eq([h["_id"] for h in r.json["hits"]["hits"]], want, "post_filtered hits")
        eq(r.json["hits"]["total"]["value"], len(want), "total after post_filter")
        counts = {}
        for i in m:
            counts[docs[i]["g"]] = counts.get(docs[i]["g"], 0) + 1
        eq({b["key"]: b["doc_count"] for b in r.json["aggregations"]["g"]["buckets"]}, counts,
           "aggregations before post_filter")
        # terminate_after
        r = s.http("POST", "/shop/_search", {"terminate_after": 17, "size": 100})
        eq((r.json["hits"]["total"]["value"], r.json["terminated_early"]), (17, True), "at 17")
        check(len(r.json["hits"]["hits"]) == 17, "17 hits", r.json["hits"]["hits"][:2])
        r = s.http("POST", "/shop/_search", {"terminate_after": 1000, "size": 0})
        eq((r.json["hits"]["total"]["value"], r.json["terminated_early"]), (200, False), "not hit")
        check("terminated_early" not in s.http("POST", "/shop/_search", {}).json, "absent")
        # search_after refusals, as Elasticsearch
        eq(s.http("POST", "/shop/_search", {"from": 1, "sort": ["n"], "search_after": [3]}).status,
           400, "search_after with from")
        eq(s.http("POST", "/shop/_search", {"sort": ["n", "g"], "search_after": [3]}).status, 400,
           "search_after shorter than sort")
        eq(s.http("POST", "/shop/_search", {"sort": ["g"], "search_after": [3]}).status, 400,
           "a number after a keyword")
        # search_after without a tiebreaker skips the ties, as Elasticsearch
        r = s.http("POST", "/shop/_search", {"size": 200, "sort": ["k"], "search_after": [2]})
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]),
           sorted(i for i in order if docs[i]["k"] > 2), "search_after k > 2")


UDF_WAT = '(module (func (export "px") (param f64) (result f64) (local.get 0)))'


def udf_calls(s, name):
    for line in s.http("GET", "/metrics").text.splitlines():
        if line.startswith('quidditch_udf_calls_total{udf="%s"' % name):
            return int(line.split()[-1])
    return 0


def t_rescore():
    with Server() as s:
        docs = {"r%04d" % i: {"n": (i * 7) % 1000, "price": float((i * 13) % 97), "k": i % 5}
                for i in range(1000)}
        load(s, "rs", docs, batch=1000)  # one bulk, one segment
        order = list(docs)
        base = {"function_score": {"query": {"match_all": {}}, "boost_mode": "replace",
                                   "script_score": {"script": "doc['n'].value"}}}
        window = by_score_then_doc([(i, float(docs[i]["n"])) for i in order])[:50]
        for mode, f in (("total", lambda a, b: a + b), ("multiply", lambda a, b: a * b),
                        ("max", max), ("min", min), ("avg", lambda a, b: (a + b) / 2)):
            r = s.http("POST", "/rs/_search", {
                "size": 10, "query": base, "rescore": {"window_size": 50, "query": {
                    "rescore_query": {"script_score": {"query": {"range": {"k": {"gte": 1}}},
                                                       "script": "doc['price'].value"}},
                    "query_weight": 0.5, "rescore_query_weight": 2, "score_mode": mode}}})
            eq(r.status, 200, "rescore %s: %r" % (mode, r))
            new = []
            for w in window:
                i, d = order[w], docs[order[w]]
                sc = f(0.5 * d["n"], 2 * d["price"]) if d["k"] >= 1 else 0.5 * d["n"]
                new.append((w, sc))
            want = sorted(new, key=lambda x: (-x[1], x[0]))[:10]
            eq([h["_id"] for h in r.json["hits"]["hits"]], [order[w] for w, _ in want],
               "rescored order (%s)" % mode)
            for h, (_, sc) in zip(r.json["hits"]["hits"], want):
                close(h["_score"], sc, 1e-6, "rescored score (%s)" % mode)
        eq(s.http("POST", "/rs/_search", {"sort": ["n"], "rescore": {"query": {
            "rescore_query": {"match_all": {}}}}}).status, 400, "rescore with sort")
        eq(s.http("POST", "/rs/_search", {"rescore": {"script": {}}}).status, 400, "no script rescorer")
        # a UDF rescorer: called on the window's documents only
        wasm = wat2wasm(UDF_WAT)
        if wasm is None:
            skip("wat2wasm not installed")
        eq(s.http("PUT", "/_udf/px?kind=score", wasm, "application/wasm").status, 200, "deploy px")
        udf = {"script_score": {"query": {"match_all": {}}, "script": {
            "source": "px", "params": {"p0": {"field": "price"}}}}}
        c0 = udf_calls(s, "px")
        r = s.http("POST", "/rs/_search", {"size": 10, "query": udf})
        eq(r.status, 200, "the UDF as the query: %r" % r)
        c1 = udf_calls(s, "px")
        r = s.http("POST", "/rs/_search", {"size": 5, "query": base, "rescore": {
            "window_size": 20, "query": {"rescore_query": udf, "query_weight": 0,
                                         "score_mode": "total"}}})
        eq(r.status, 200, "the UDF as the rescorer: %r" % r)
        c2 = udf_calls(s, "px")
        want = sorted(window[:20], key=lambda w: (-docs[order[w]]["price"], w))[:5]
        eq([h["_id"] for h in r.json["hits"]["hits"]], [order[w] for w in want], "UDF rescore order")
        eq((c1 - c0, c2 - c1), (1000, 20), "the UDF as the query scores every document, as the "
           "rescorer the window's 20 only")


if __name__ == "__main__":
    run_tests([
        ("helpers.scan and search_after over 25k documents", t_scan_and_search_after_25k),
        ("a point in time is stable under concurrent writes", t_pit_is_stable_under_writes),
        ("scroll contexts expire and are bounded", t_scroll_expiry_and_limits),
        ("collapse, post_filter, terminate_after", t_collapse_post_filter_terminate_after),
        ("rescore by a query and by a UDF", t_rescore),
    ])
