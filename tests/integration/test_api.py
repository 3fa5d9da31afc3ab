"""test_api.py: the index, document, _bulk, _search and _count API of a real quidditch process:
ES shapes and errors, BM25 scores against an independent computation, refresh, restart and
SIGKILL durability."""
import json
import math
import os
import signal
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, close, eq, run_tests  # noqa: E402

MAPPINGS = {"mappings": {"properties": {"title": {"type": "text"}, "tag": {"type": "keyword"},
                                        "price": {"type": "double"}, "days": {"type": "integer"}}}}
DOCS = [
    ("1", {"title": "fast laptop", "tag": "a", "price": 999.5, "days": 3}),
    ("2", {"title": "laptop bag", "tag": "b", "price": 30, "days": 100}),
    ("3", {"title": "gaming laptop with a big laptop screen", "tag": "a", "price": 1500, "days": 10}),
    ("4", {"title": "phone case", "tag": "c", "price": 12, "days": 1}),
    ("5", {"title": "the quick brown fox", "tag": "c", "price": 1, "days": 400}),
]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def tokens(text):
    return text.lower().split()


def bm25(query_terms, docs, k1=1.2, b=0.75):
    """Lucene 8+ BM25 (no k1+1 factor), float arithmetic as Lucene does, short fields only
    (lengths < 40 store exactly in the SmallFloat norm)."""
    n = len(docs)
    lens = {i: len(tokens(d["title"])) for i, d in docs}
    avgdl = f32(sum(lens.values()) / n)
    out = {}
    for i, d in docs:
        toks = tokens(d["title"])
        total = 0.0
        matched = False
        for t in query_terms:
            freq = toks.count(t)
            if not freq:
                continue
            matched = True
            df = sum(1 for _, e in docs if t in tokens(e["title"]))
            idf = f32(math.log(1 + (n - df + 0.5) / (df + 0.5)))
            cache = f32(1 / f32(k1 * f32(f32(1 - b) + f32(b * lens[i] / avgdl))))
            s = f32(idf - f32(idf / f32(1 + f32(freq * cache))))
            total = f32(total + s)
        if matched:
            out[i] = total
    return out


def load(s, index="products"):
    r = s.http("PUT", "/" + index, MAPPINGS)
    eq(r.status, 200, "create index: %r" % r)
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_index": index, "_id": i}}, d]
    r = s.bulk(lines)
    eq(r.status, 200, "bulk: %r" % r)
    eq(r.json["errors"], False, "bulk errors")
    eq([it["index"]["status"] for it in r.json["items"]], [201] * len(DOCS), "bulk item statuses")


def search(s, body, index="products"):
    r = s.http("POST", "/%s/_search" % index, body)
    eq(r.status, 200, "search %r: %r" % (body, r))
    return r.json


def count(s, index="products"):
    r = s.http("GET", "/%s/_count" % index)
    eq(r.status, 200, "count: %r" % r)
    return r.json["count"]


def check_bm25(s):
    for q in (["laptop"], ["laptop", "case"], ["quick", "fox", "laptop"]):
        got = search(s, {"query": {"match": {"title": " ".join(q)}}, "size": 10})
        want = bm25(q, DOCS)
        eq(got["hits"]["total"]["value"], len(want), "total hits for %s" % q)
        ids = [h["_id"] for h in got["hits"]["hits"]]
        eq(sorted(ids), sorted(want), "hits for %s" % q)
        for h in got["hits"]["hits"]:
            close(h["_score"], want[h["_id"]], 1e-6, "score of %s for %s" % (h["_id"], q))
        scores = [h["_score"] for h in got["hits"]["hits"]]
        eq(scores, sorted(scores, reverse=True), "hits sorted by score")


def t_banner():
    with Server() as s:
        r = s.http("GET", "/")
        eq(r.status, 200)
        eq(r.headers.get("X-elastic-product"), "Elasticsearch", "product header")
        check(r.json["version"]["number"].startswith("8."), "version", r)
        check("tagline" in r.json and r.json["cluster_name"], "banner fields", r)
        eq(s.http("GET", "/_cluster/health").json["status"], "green", "health")
        check(s.http("GET", "/_nodes").json["nodes"], "nodes")


def t_official_client_media_types():
    """What elasticsearch-py / elasticsearch-js 8.x send: versioned media types; they refuse a
    server without the X-elastic-product header."""
    vnd = "application/vnd.elasticsearch+json; compatible-with=8"
    h = {"Accept": vnd}
    with Server() as s:
        r = s.http("HEAD", "/", headers=h)
        eq((r.status, r.headers.get("X-elastic-product")), (200, "Elasticsearch"), "ping")
        r = s.http("PUT", "/things", MAPPINGS, vnd, headers=h)
        eq(r.status, 200, "create with vnd media type: %r" % r)
        check(r.headers.get("Content-Type", "").startswith("application/vnd.elasticsearch+json"),
              "versioned response media type", r.headers)
        body = "".join('{"index":{"_id":"%s"}}\n%s\n' % (i, __import__("json").dumps(d))
                       for i, d in DOCS)
        r = s.http("POST", "/things/_bulk?refresh=wait_for", body,
                   "application/vnd.elasticsearch+x-ndjson; compatible-with=8", headers=h)
        eq((r.status, r.json["errors"]), (200, False), "bulk with vnd ndjson: %r" % r)
        r = s.http("POST", "/things/_search", {"query": {"match": {"title": "laptop"}}}, vnd,
                   headers=h)
        eq((r.status, r.json["hits"]["total"]["value"]), (200, 3), "search: %r" % r)
        eq(s.http("HEAD", "/things/_doc/1", headers=h).status, 200, "exists")


def t_index_search_bm25():
    with Server() as s:
        load(s)
        check_bm25(s)
        eq(count(s), 5, "count")
        r = s.http("POST", "/products/_count", {"query": {"term": {"tag": "a"}}})
        eq(r.json["count"], 2, "count with query")
        r = s.http("GET", "/products/_doc/3")
        eq((r.status, r.json["found"], r.json["_source"]), (200, True, DOCS[2][1]), "get doc")
        eq(s.http("HEAD", "/products").status, 200, "HEAD index")
        r = s.http("GET", "/products")
        eq(r.json["products"]["mappings"]["properties"]["price"]["type"], "double", "mapping")


def t_errors_leave_state_unchanged():
    with Server() as s:
        load(s)
        r = s.http("PUT", "/products", MAPPINGS)
        eq((r.status, r.json["error"]["type"]), (400, "resource_already_exists_exception"), "dup")
        r = s.http("PUT", "/bad", {"mappings": {"properties": {"x": {"type": "nosuchtype"}}}})
        eq((r.status, r.json["error"]["type"]), (400, "mapper_parsing_exception"), "bad mapping")
        eq(s.http("HEAD", "/bad").status, 404, "index with bad mapping must not exist")
        r = s.http("PUT", "/Upper")
        eq((r.status, r.json["error"]["type"]), (400, "invalid_index_name_exception"), "bad name")
        r = s.http("PUT", "/brokenjson", "{not json")
        eq((r.status, r.json["error"]["type"]), (400, "x_content_parse_exception"), "bad json")
        eq(s.http("HEAD", "/brokenjson").status, 404, "index from bad json must not exist")
        r = s.http("POST", "/products/_search", "{\"query\": ")
        eq((r.status, r.json["error"]["type"]), (400, "x_content_parse_exception"), "search json")
        check("root_cause" in r.json["error"] and r.json["status"] == 400, "ES error shape", r)
        r = s.http("POST", "/products/_search", {"query": {"nosuchquery": {}}})
        eq((r.status, r.json["error"]["type"]), (400, "parsing_exception"), "unknown query")
        r = s.http("POST", "/nope/_search", {})
        eq((r.status, r.json["error"]["type"]), (404, "index_not_found_exception"), "no index")
        eq(r.json["error"]["reason"], "no such index [nope]", "reason")
        r = s.http("PUT", "/products/_doc/9", {"title": "x", "price": "not a number"})
        eq((r.status, r.json["error"]["type"]), (400, "mapper_parsing_exception"), "wrong type")
        r = s.http("PUT", "/products/_doc/9", "[1,2]")
        eq(r.status // 100, 4, "array as a document: %r" % r)
        bad_bulk = '{"index":{"_id":"10"}}\n{"title":"ok"}\n{"nosuchaction":{}}\n{}\n'
        r = s.http("POST", "/products/_bulk?refresh=true", bad_bulk, "application/x-ndjson")
        eq(r.status, 400, "malformed bulk: %r" % r)
        r = s.http("POST", "/products/_bulk?refresh=true", '{"index":{"_id":"11"}}\n{oops\n',
                   "application/x-ndjson")
        eq((r.status, r.json["errors"]), (200, True), "bulk with a bad source line: %r" % r)
        eq(r.json["items"][0]["index"]["error"]["type"], "mapper_parsing_exception", "bad source")
        s.http("POST", "/products/_refresh")
        eq(count(s), 5, "documents after bad requests")
        eq(s.http("GET", "/products/_doc/9").status, 404, "rejected doc absent")
        eq(s.http("GET", "/products/_doc/10").json["found"], False, "bulk rejected whole")
        r = s.http("PUT", "/newindex/_doc/" + "x" * 600, {"title": "long id"})
        eq(r.status, 400, "id too long: %r" % r)
        r = s.http("POST", "/newindex/_update/1", {"doc": {"title": "no such doc"}})
        eq(r.status, 404, "update in a missing index: %r" % r)
        r = s.bulk([{"update": {"_index": "newindex", "_id": "1"}}, {"doc": {"a": 1}},
                    {"delete": {"_index": "newindex", "_id": "1"}}])
        eq([list(it.values())[0]["status"] for it in r.json["items"]], [404, 404], "bulk items")
        eq(s.http("HEAD", "/newindex").status, 404, "failed writes create no index")
        r = s.http("GET", "/products/_doc/404")
        eq((r.status, r.json["found"]), (404, False), "missing doc")
        r = s.http("GET", "/a/b/c/d/e")
        eq(r.status, 400, "no route")
        r = s.http("PATCH", "/products")
        eq(r.status, 405, "wrong method")
        r = s.http("POST", "/products/_search", b"{" + b" " * (11 << 20) + b"}", "application/json")
        eq((r.status, r.json["error"]["type"]), (413, "content_too_long_exception"), "body limit")
        check_bm25(s)


def t_bulk_items_and_doc_routes():
    with Server() as s:
        load(s)
        lines = [{"create": {"_index": "products", "_id": "1"}}, {"title": "dup"},
                 {"update": {"_index": "products", "_id": "2"}}, {"doc": {"price": 31}},
                 {"delete": {"_index": "products", "_id": "4"}},
                 {"delete": {"_index": "products", "_id": "nope"}},
                 {"index": {"_index": "products", "_id": "6"}}, {"title": "blue laptop", "days": "x"},
                 {"update": {"_index": "products", "_id": "77"}}, {"doc": {"title": "y"}}]
        r = s.bulk(lines)
        eq(r.status, 200, "bulk")
        eq(r.json["errors"], True, "errors flag")
        st = [list(it.values())[0]["status"] for it in r.json["items"]]
        eq(st, [409, 200, 200, 404, 400, 404], "item statuses")
        eq(r.json["items"][0]["create"]["error"]["type"], "version_conflict_engine_exception", "create")
        eq(r.json["items"][4]["index"]["error"]["type"], "mapper_parsing_exception", "bad item")
        eq(r.json["items"][5]["update"]["error"]["type"], "document_missing_exception", "update")
        eq(s.http("GET", "/products/_doc/2").json["_source"]["price"], 31, "partial update")
        eq(s.http("GET", "/products/_doc/2").json["_source"]["title"], "laptop bag", "kept field")
        eq(count(s), 4, "count after bulk")
        r = s.http("POST", "/products/_doc?refresh=true", {"title": "generated id"})
        eq((r.status, r.json["result"]), (201, "created"), "POST _doc")
        gid = r.json["_id"]
        eq(s.http("GET", "/products/_doc/" + gid).json["_source"]["title"], "generated id", "get")
        r = s.http("PUT", "/products/_doc/" + gid, {"title": "again"})
        eq((r.status, r.json["result"], r.json["_version"]), (200, "updated", 2), "reindex")
        r = s.http("DELETE", "/products/_doc/" + gid)
        eq((r.status, r.json["result"]), (200, "deleted"), "delete")
        r = s.http("DELETE", "/products/_doc/" + gid)
        eq((r.status, r.json["result"]), (404, "not_found"), "delete again")
        r = s.http("PUT", "/products/_doc/a%2Fb%20c?refresh=true", {"title": "slash id"})
        eq((r.status, r.json["_id"]), (201, "a/b c"), "encoded id")
        eq(s.http("GET", "/products/_doc/a%2Fb%20c").json["_source"]["title"], "slash id", "get")
        eq(s.http("DELETE", "/products/_doc/a%2Fb%20c?refresh=true").status, 200, "delete")
        r = s.http("PUT", "/products/_create/1", {"title": "x"})
        eq(r.status, 409, "_create of an existing id")
        eq(r.json["error"]["type"], "version_conflict_engine_exception", "_create conflict type")
        # optimistic concurrency: if_seq_no must match the document's _seq_no
        seq = s.http("GET", "/products/_doc/3").json["_seq_no"]
        r = s.http("PUT", "/products/_doc/3?if_seq_no=%d&if_primary_term=1" % (seq + 100),
                   {"title": "stale"})
        eq((r.status, r.json["error"]["type"]), (409, "version_conflict_engine_exception"),
           "stale if_seq_no: %r" % r)
        eq(s.http("DELETE", "/products/_doc/3?if_seq_no=%d" % (seq + 100)).status, 409,
           "stale delete")
        r = s.http("PUT", "/products/_doc/3?if_seq_no=%d&if_primary_term=1" % seq, {"title": "fresh"})
        eq(r.status, 200, "current if_seq_no: %r" % r)
        eq(s.http("GET", "/products/_doc/3").json["_source"], {"title": "fresh"}, "conditional put")
        eq(s.http("PUT", "/products/_doc/3?if_seq_no=x", {"a": 1}).status, 400, "bad if_seq_no")
        r = s.bulk([{"create": {"_index": "products", "_id": "twice"}}, {"title": "one"},
                    {"create": {"_index": "products", "_id": "twice"}}, {"title": "two"},
                    {"index": {"_index": "products", "_id": "3", "if_seq_no": 99999}}, {"t": 1}])
        eq([list(it.values())[0]["status"] for it in r.json["items"]], [201, 409, 409],
           "creates and conditions inside one batch")
        eq(s.http("GET", "/products/_doc/twice").json["_source"], {"title": "one"}, "first wins")
        r = s.http("POST", "/products/_update/1", {"doc": {"days": 4}})
        eq(r.status, 200, "_update: %r" % r)
        r = s.http("PUT", "/autocreated/_doc/1?refresh=true", {"title": "hello world"})
        eq(r.status, 201, "auto-create index")
        eq(count(s, "autocreated"), 1, "auto-created index count")
        r = s.http("DELETE", "/autocreated")
        eq((r.status, r.json["acknowledged"]), (200, True), "delete index")
        eq(s.http("HEAD", "/autocreated").status, 404, "deleted index")
        eq(s.http("DELETE", "/autocreated").status, 404, "delete missing index")


def t_multi_index_search():
    with Server() as s:
        load(s, "shop-a")
        load(s, "shop-b")
        s.http("PUT", "/other/_doc/1?refresh=true", {"title": "laptop elsewhere"})
        q = {"query": {"match": {"title": "laptop"}}, "size": 50}
        for target, want in (("shop-a,shop-b", 6), ("shop-*", 6), ("_all", 7)):
            r = s.http("POST", "/%s/_search" % target, q)
            eq((r.status, r.json["hits"]["total"]["value"]), (200, want), "%s: %r" % (target, r))
        r = s.http("POST", "/_search", q)
        eq(r.json["hits"]["total"]["value"], 7, "/_search")
        eq({h["_index"] for h in r.json["hits"]["hits"]}, {"shop-a", "shop-b", "other"}, "_index")
        eq(s.http("GET", "/_count").json["count"], 11, "/_count")
        eq(s.http("GET", "/shop-*/_count").json["count"], 10, "wildcard count")
        r = s.http("POST", "/nomatch-*/_search", q)
        eq((r.status, r.json["hits"]["total"]["value"]), (200, 0), "wildcard without match")
        r = s.http("POST", "/shop-a,missing/_search", q)
        eq((r.status, r.json["error"]["type"]), (404, "index_not_found_exception"), "missing")
        r = s.http("POST", "/shop-a,missing/_search?ignore_unavailable=true", q)
        eq((r.status, r.json["hits"]["total"]["value"]), (200, 3), "ignore_unavailable")
        r = s.http("GET", "/shop-a/_search?size=1&from=1")
        eq(len(r.json["hits"]["hits"]), 1, "size/from URI parameters")
        ms = "".join(json.dumps(x) + "\n" for x in [
            {"index": "shop-a"}, q, {"index": ["shop-a", "shop-b"]}, {"query": {"match_all": {}}},
            {}, {"query": {"nosuch": {}}}, {"index": "missing"}, {}])
        r = s.http("POST", "/_msearch", ms, "application/x-ndjson")
        eq(r.status, 200, "_msearch: %r" % r)
        eq([x["status"] for x in r.json["responses"]], [200, 200, 400, 404], "_msearch statuses")
        eq(r.json["responses"][0]["hits"]["total"]["value"], 3, "_msearch first")
        eq(r.json["responses"][1]["hits"]["total"]["value"], 10, "_msearch second")
        eq(r.json["responses"][3]["error"]["type"], "index_not_found_exception", "_msearch 404")
        r = s.http("POST", "/shop-b/_msearch", "{}\n" + json.dumps(q) + "\n", "application/x-ndjson")
        eq(r.json["responses"][0]["hits"]["total"]["value"], 3, "_msearch with URL index")
        r = s.http("POST", "/_mget", {"docs": [{"_index": "shop-a", "_id": "1"},
                                              {"_index": "shop-b", "_id": "nope"},
                                              {"_index": "missing", "_id": "1"}]})
        eq(r.status, 200, "_mget: %r" % r)
        d = r.json["docs"]
        eq((d[0]["found"], d[0]["_source"]["title"]), (True, "fast laptop"), "_mget found")
        eq(d[1]["found"], False, "_mget missing doc")
        eq(d[2]["error"]["type"], "index_not_found_exception", "_mget missing index")
        r = s.http("POST", "/shop-b/_mget", {"ids": ["2", 3]})
        eq([x["_id"] for x in r.json["docs"] if x["found"]], ["2", "3"], "_mget ids")


def t_delete_by_query():
    with Server() as s:
        lines = []
        for i in range(2500):
            lines += [{"index": {"_index": "logs", "_id": str(i)}},
                      {"level": "debug" if i % 5 else "error", "n": i}]
        eq(s.bulk(lines, "/_bulk").json["errors"], False, "bulk without refresh")
        r = s.http("POST", "/logs/_delete_by_query", {"query": {"term": {"level": "debug"}}})
        eq(r.status, 200, "_delete_by_query: %r" % r)
        eq((r.json["deleted"], r.json["failures"]), (2000, []), "deleted")
        check(r.json["batches"] >= 2, "several batches", r)
        eq(count(s, "logs"), 500, "documents left")
        r = s.http("POST", "/logs/_delete_by_query", {"query": {"nosuch": {}}})
        eq(r.status, 400, "bad query: %r" % r)
        eq(s.http("POST", "/logs/_delete_by_query", {}).status, 400, "query is required")
        eq(s.http("POST", "/nope/_delete_by_query", {"query": {"match_all": {}}}).status, 404,
           "missing index")
        eq(count(s, "logs"), 500, "bad requests deleted nothing")


def t_refresh_within_a_second():
    with Server() as s:
        load(s)
        r = s.http("PUT", "/products/_doc/20", {"title": "late laptop"})
        eq(r.status, 201)
        end = time.monotonic() + 10
        while count(s) != 6:
            check(time.monotonic() < end, "document not searchable within 10 s")
            time.sleep(0.05)
        hits = search(s, {"query": {"match": {"title": "late"}}})["hits"]["hits"]
        eq([h["_id"] for h in hits], ["20"], "searchable after background refresh")


def t_restart_keeps_data():
    with Server() as s:
        load(s)
        before = search(s, {"query": {"match": {"title": "laptop"}}})
        eq(s.stop(), 0, "exit status after SIGTERM")
        s.start()
        eq(s.stop(signal.SIGINT), 0, "exit status after SIGINT")
        check("SIGINT received, shutting down" in s.logtext(), "shutdown logged", s.logtext())
        s.start()
        after = search(s, {"query": {"match": {"title": "laptop"}}})
        eq([(h["_id"], h["_score"]) for h in after["hits"]["hits"]],
           [(h["_id"], h["_score"]) for h in before["hits"]["hits"]], "hits after restart")
        check_bm25(s)


def t_shutdown_under_load_exits_cleanly():
    """SIGTERM while clients open connections and search: the node exits 0 every time (MHD's
    quiesce once raced its epoll workers and aborted the process), and each request in flight
    gets an answer or a closed connection, never a hang."""
    import http.client
    with Server() as s:
        load(s)
        for round_ in range(12):
            stop = threading.Event()
            answered = [0]

            def client():
                while not stop.is_set():
                    try:
                        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
                        for _ in range(3):
                            c.request("POST", "/products/_search",
                                      json.dumps({"query": {"match": {"title": "laptop"}}}),
                                      {"Content-Type": "application/json"})
                            c.getresponse().read()
                            answered[0] += 1
                        c.close()
                    except (OSError, http.client.HTTPException):
                        pass
            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.05 * (round_ % 4))
            rc = s.stop()
            stop.set()
            for t in threads:
                t.join(timeout=20)
                check(not t.is_alive(), "a client hung after the node stopped")
            eq(rc, 0, "exit status after SIGTERM under load (round %d): %s" % (round_, s.logtext()[-2000:]))
            s.start()
        eq(search(s, {"query": {"match": {"title": "laptop"}}})["hits"]["total"]["value"], 3,
           "documents after the restarts")


def t_sigkill_keeps_acknowledged_writes():
    with Server() as s:
        load(s)
        acked = []
        for i in range(30):
            r = s.http("PUT", "/products/_doc/k%d" % i, {"title": "killed laptop %d" % i})
            eq(r.status, 201)
            acked.append("k%d" % i)
        r = s.bulk([x for i in range(30) for x in
                    ({"index": {"_index": "products", "_id": "b%d" % i}}, {"title": "bulk %d" % i})],
                   "/_bulk")
        eq(r.json["errors"], False)
        s.kill()
        s.start()
        s.http("POST", "/products/_refresh")
        eq(count(s), 5 + 30 + 30, "documents after SIGKILL")
        for i in acked:
            eq(s.http("GET", "/products/_doc/" + i).json["found"], True, "doc %s" % i)


def t_searches_run_during_writes():
    with Server() as s:
        load(s)
        errors = []
        stop = threading.Event()

        def writer():
            i = 0
            while not stop.is_set():
                r = s.http("PUT", "/products/_doc/w%d" % i, {"title": "writer laptop"})
                if r.status != 201:
                    errors.append(r)
                i += 1
        th = threading.Thread(target=writer)
        th.start()
        try:
            for _ in range(40):
                r = s.http("POST", "/products/_search", {"query": {"match": {"title": "laptop"}}})
                if r.status != 200:
                    errors.append(r)
        finally:
            stop.set()
            th.join()
        eq(errors, [], "errors during concurrent writes and searches")


if __name__ == "__main__":
    run_tests([
        ("banner_health_nodes", t_banner),
        ("official_client_media_types_and_product_header", t_official_client_media_types),
        ("index_bulk_search_bm25_matches_independent_computation", t_index_search_bm25),
        ("bad_requests_give_es_errors_and_leave_state_unchanged", t_errors_leave_state_unchanged),
        ("bulk_items_and_document_routes", t_bulk_items_and_doc_routes),
        ("search_and_count_across_indexes", t_multi_index_search),
        ("delete_by_query_in_batches", t_delete_by_query),
        ("documents_become_searchable_without_explicit_refresh", t_refresh_within_a_second),
        ("restart_keeps_indexes_and_documents", t_restart_keeps_data),
        ("shutdown_under_load_exits_cleanly", t_shutdown_under_load_exits_cleanly),
        ("sigkill_keeps_acknowledged_writes", t_sigkill_keeps_acknowledged_writes),
        ("searches_run_during_writes", t_searches_run_during_writes),
    ])
