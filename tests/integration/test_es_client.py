"""test_es_client.py: Elastic's official Python client (elasticsearch-py 7.17, Debian's
python3-elasticsearch) against a real quidditch: its product check (GET / version and the
X-elastic-product header), indexes (create with mappings, exists, get_mapping, delete),
documents (index, get, exists, update, delete), helpers.bulk, refresh, count, search with a match
query and a function_score script_score expression, and errors raised as the client's
NotFoundError / RequestError / ConflictError with Elasticsearch's error type.

Skipped (exit 77, CTest's skip) when the module cannot be imported. Debian installs it for
/usr/bin/python3; when CTest's python3 is another one (pyenv, a venv) that cannot see it, the
test re-runs itself under /usr/bin/python3 first."""
import json
import math
import os
import sys
import urllib.request

SYSTEM_PYTHON = "/usr/bin/python3"
try:
    import elasticsearch
    from elasticsearch import ConflictError, Elasticsearch, NotFoundError, RequestError, helpers
except ImportError as e:
    if (not os.environ.get("QD_ES_REEXEC") and os.access(SYSTEM_PYTHON, os.X_OK)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["QD_ES_REEXEC"] = "1"
        sys.stdout.flush()
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    print("# SKIP Elastic's Python client is not importable (%s): apt-get install -y "
          "python3-elasticsearch" % e)
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, close, eq, run_tests  # noqa: E402

MAPPINGS = {"properties": {"title": {"type": "text"}, "price": {"type": "double"},
                           "brand": {"type": "keyword"}, "stock": {"type": "long"}}}
DOCS = {"1": {"title": "Fast laptop", "price": 999.0, "brand": "acme", "stock": 3},
        "2": {"title": "Laptop bag", "price": 30.0, "brand": "carry", "stock": 0},
        "3": {"title": "Gaming laptop with laptop stand", "price": 1500.0, "brand": "acme",
              "stock": 1},
        "4": {"title": "USB-C dock", "price": 89.9, "brand": "plug", "stock": 12}}


def client(s, **kw):
    return Elasticsearch(["http://127.0.0.1:%d" % s.port], **kw)


def error_of(fn, exc):
    """Call FN, expect the client to raise EXC; returns (status, error type)."""
    try:
        r = fn()
    except exc as e:
        return e.status_code, e.error
    except elasticsearch.TransportError as e:
        raise AssertionError("expected %s, got %s %s %r" % (exc.__name__, type(e).__name__,
                                                             e.status_code, e.info))
    raise AssertionError("expected %s, the call returned %r" % (exc.__name__, r))


def load(es):
    es.indices.create(index="products", mappings=MAPPINGS)
    ok, errors = helpers.bulk(es, ({"_index": "products", "_id": i, "_source": d}
                                   for i, d in DOCS.items()))
    eq((ok, errors), (len(DOCS), []), "helpers.bulk")
    es.indices.refresh(index="products")


def t_product_check():
    with Server() as s:
        es = client(s)
        info = es.info()  # the client's product check runs before the first request
        eq(info["version"]["number"].split(".")[0], "8", "version.number")
        check(es.transport._verified_elasticsearch is True, "product check verdict",
              es.transport._verified_elasticsearch)
        check(es.ping(), "ping (HEAD /)")
        # the same check on the raw answer, so a failure says which part is missing
        with urllib.request.urlopen(s.url + "/") as r:
            headers = {k.lower(): v for k, v in r.headers.items()}
            body = json.loads(r.read())
        eq(headers.get("x-elastic-product"), "Elasticsearch", "X-elastic-product header")
        from elasticsearch.transport import _ProductChecker
        eq(_ProductChecker.check_product(headers, body), True, "client's product checker")
        # compatibility mode (ELASTIC_CLIENT_APIVERSIONING=1): versioned media types
        compat = "application/vnd.elasticsearch+json; compatible-with=7"
        es7 = client(s, headers={"accept": compat, "content-type": compat})
        eq(es7.indices.create(index="compat", mappings=MAPPINGS)["acknowledged"], True,
           "create in compatibility mode")
        es7.index(index="compat", id="1", document={"title": "x"}, refresh=True)
        eq(es7.search(index="compat", query={"match_all": {}})["hits"]["total"]["value"], 1,
           "search in compatibility mode")


def t_indexes():
    with Server() as s:
        es = client(s)
        r = es.indices.create(index="products", mappings=MAPPINGS,
                              settings={"number_of_shards": 1})
        eq((r["acknowledged"], r["index"]), (True, "products"), "indices.create")
        eq(es.indices.exists(index="products"), True, "exists")
        eq(es.indices.exists(index="nope"), False, "exists of a missing index")
        m = es.indices.get_mapping(index="products")
        eq(m["products"]["mappings"]["properties"]["price"], {"type": "double"}, "get_mapping")
        eq(error_of(lambda: es.indices.create(index="products"), RequestError),
           (400, "resource_already_exists_exception"), "create twice")
        eq(error_of(lambda: es.indices.create(index="Products"), RequestError),
           (400, "invalid_index_name_exception"), "upper-case name")
        eq(error_of(lambda: es.indices.create(index="bad", mappings={"properties": {
            "x": {"type": "no_such_type"}}}), RequestError), (400, "mapper_parsing_exception"),
            "unknown field type")
        eq(es.indices.exists(index="bad"), False, "a refused create left an index")
        eq(es.indices.delete(index="products")["acknowledged"], True, "indices.delete")
        eq(es.indices.exists(index="products"), False, "exists after delete")
        eq(error_of(lambda: es.indices.delete(index="products"), NotFoundError),
           (404, "index_not_found_exception"), "delete a missing index")


def t_documents():
    with Server() as s:
        es = client(s)
        es.indices.create(index="products", mappings=MAPPINGS)
        r = es.index(index="products", id="9", document={"title": "USB-C dock", "price": 89.9})
        eq((r["result"], r["_id"], r["_version"]), ("created", "9", 1), "index")
        r = es.get(index="products", id="9")
        eq((r["found"], r["_source"]), (True, {"title": "USB-C dock", "price": 89.9}), "get")
        eq(es.exists(index="products", id="9"), True, "exists")
        r = es.update(index="products", id="9", doc={"price": 79.9})
        eq((r["result"], r["_version"]), ("updated", 2), "update")
        eq(es.get(index="products", id="9")["_source"], {"title": "USB-C dock", "price": 79.9},
           "get after update")
        r = es.index(index="products", id="9", document={"title": "dock"})
        eq((r["result"], r["_version"]), ("updated", 3), "index over an existing id")
        eq(error_of(lambda: es.create(index="products", id="9", document={"title": "x"}),
                    ConflictError), (409, "version_conflict_engine_exception"), "create twice")
        r = es.index(index="products", document={"title": "no id"})
        eq((r["result"], len(r["_id"])), ("created", 20), "index without an id")
        eq(es.delete(index="products", id="9")["result"], "deleted", "delete")
        eq(es.exists(index="products", id="9"), False, "exists after delete")
        try:
            es.get(index="products", id="9")
            raise AssertionError("get of a deleted document did not raise")
        except NotFoundError as e:
            eq((e.status_code, e.info.get("found")), (404, False), "get of a deleted document")
        try:
            es.delete(index="products", id="9")
            raise AssertionError("delete of a missing document did not raise")
        except NotFoundError as e:
            eq((e.status_code, e.info.get("result")), (404, "not_found"), "delete missing")
        eq(error_of(lambda: es.get(index="nope", id="1"), NotFoundError),
           (404, "index_not_found_exception"), "get from a missing index")
        eq(error_of(lambda: es.update(index="products", id="404", doc={"a": 1}), NotFoundError),
           (404, "document_missing_exception"), "update of a missing document")


def t_bulk_refresh_count():
    with Server() as s:
        es = client(s)
        es.indices.create(index="items", mappings={"properties": {"n": {"type": "long"},
                                                                  "tag": {"type": "keyword"}}})
        actions = ({"_index": "items", "_id": str(i), "_source": {"n": i, "tag": "t%d" % (i % 3)}}
                   for i in range(500))
        eq(helpers.bulk(es, actions, chunk_size=128), (500, []), "helpers.bulk of 500 in chunks")
        eq(es.indices.refresh(index="items")["_shards"]["failed"], 0, "indices.refresh")
        eq(es.count(index="items")["count"], 500, "count")
        eq(es.count(index="items", body={"query": {"term": {"tag": "t1"}}})["count"],
           len([i for i in range(500) if i % 3 == 1]), "count with a query")
        eq(es.count(index="items", body={"query": {"range": {"n": {"gte": 100, "lt": 150}}}})[
            "count"], 50, "count with a range")
        # deletes and updates through helpers, then an item that fails
        ok, errors = helpers.bulk(es, [
            {"_op_type": "delete", "_index": "items", "_id": "0"},
            {"_op_type": "update", "_index": "items", "_id": "1", "doc": {"n": 1001}}],
            refresh=True)
        eq((ok, errors), (2, []), "bulk delete + update")
        eq(es.count(index="items")["count"], 499, "count after the bulk delete")
        eq(es.get(index="items", id="1")["_source"]["n"], 1001, "bulk update")
        try:
            helpers.bulk(es, [{"_op_type": "create", "_index": "items", "_id": "2",
                               "_source": {"n": 2}}])
            raise AssertionError("a failing bulk item did not raise BulkIndexError")
        except helpers.BulkIndexError as e:
            eq(len(e.errors), 1, "one failed item")
            item = e.errors[0]["create"]
            eq((item["status"], item["error"]["type"]), (409, "version_conflict_engine_exception"),
               "the failed item")
        ok, errors = helpers.bulk(es, [{"_index": "items", "_id": "x", "_source": {"n": "NaN?"}},
                                       {"_index": "items", "_id": "y", "_source": {"n": 7}}],
                                  raise_on_error=False, refresh=True)
        eq(ok, 1, "one good item beside a bad one")
        eq(errors[0]["index"]["error"]["type"], "mapper_parsing_exception", "the bad item")
        eq(es.exists(index="items", id="y"), True, "the good item is stored")
        eq(es.exists(index="items", id="x"), False, "the bad item is not")


def t_search():
    with Server() as s:
        es = client(s)
        load(es)
        r = es.search(index="products", query={"match": {"title": "laptop"}})
        hits = r["hits"]["hits"]
        eq(r["hits"]["total"], {"value": 3, "relation": "eq"}, "hits.total")
        eq(sorted(h["_id"] for h in hits), ["1", "2", "3"], "match: which documents")
        for h in hits:
            eq(h["_source"], DOCS[h["_id"]], "_source of %s" % h["_id"])
            check(h["_score"] > 0, "positive BM25 score", h)
        close(r["hits"]["max_score"], max(h["_score"] for h in hits), 1e-12, "max_score")
        bm25 = {h["_id"]: h["_score"] for h in hits}

        r = es.search(index="products", query={"match": {"title": "dock"}})
        eq([h["_id"] for h in r["hits"]["hits"]], ["4"], "match: another term")

        # function_score with a script_score expression: the score is the expression's value
        r = es.search(index="products", query={"function_score": {
            "query": {"match": {"title": "laptop"}},
            "script_score": {"script": {"source": "_score * log(2 + doc['price'])"}},
            "boost_mode": "replace"}})
        got = [(h["_id"], h["_score"]) for h in r["hits"]["hits"]]
        want = sorted(((i, bm25[i] * math.log(2 + DOCS[i]["price"])) for i in bm25),
                      key=lambda p: -p[1])
        eq([i for i, _ in got], [i for i, _ in want], "ranking by the expression")
        for (i, g), (_, w) in zip(got, want):
            close(g, w, 1e-6, "expression score of %s" % i)

        # with params, and boost_mode multiply (the default)
        r = es.search(index="products", query={"function_score": {
            "query": {"match": {"title": "laptop"}},
            "script_score": {"script": {"source": "doc['stock'] * params.k",
                                        "params": {"k": 2}}}}})
        for h in r["hits"]["hits"]:
            close(h["_score"], bm25[h["_id"]] * DOCS[h["_id"]]["stock"] * 2, 1e-6,
                  "multiply of %s" % h["_id"])
        eq([h["_id"] for h in r["hits"]["hits"]][0], "1", "highest stock * bm25 first")

        # size / from / sort / aggregations through the client's keyword arguments
        r = es.search(index="products", query={"match_all": {}}, sort=[{"price": "asc"}],
                      size=2, from_=1)
        eq([h["_id"] for h in r["hits"]["hits"]], ["4", "1"], "sort by price, from 1, size 2")
        r = es.search(index="products", size=0, aggs={"brands": {"terms": {"field": "brand"}}})
        eq({b["key"]: b["doc_count"] for b in r["aggregations"]["brands"]["buckets"]},
           {"acme": 2, "carry": 1, "plug": 1}, "terms aggregation")

        # parameters the client sends in the URL: ?_source_includes= always, ?sort= when asked
        r = es.search(index="products", query={"ids": {"values": ["1"]}},
                      _source_includes=["title", "brand"])
        eq(r["hits"]["hits"][0]["_source"], {"title": "Fast laptop", "brand": "acme"},
           "_source_includes in the URL")
        r = es.search(index="products", _source_excludes="title,stock", size=1,
                      query={"ids": {"values": ["4"]}})
        eq(r["hits"]["hits"][0]["_source"], {"price": 89.9, "brand": "plug"},
           "_source_excludes in the URL")
        r = es.search(index="products", params={"sort": "brand:desc,price:asc"}, size=4)
        eq([h["_id"] for h in r["hits"]["hits"]], ["4", "2", "1", "3"], "?sort= in the URL")
        # ... and those not served here fail instead of answering another question
        # URI search (?q=) is the query_string query (test_analysis checks its syntax)
        eq(es.search(index="products", q="title:nothing")["hits"]["total"]["value"], 0, "?q= (URI search)")
        eq(es.count(index="products", q="title:nothing")["count"], 0, "count ?q=")
        eq(error_of(lambda: es.search(index="products", q="title:(nothing"), RequestError),
           (400, "query_shard_exception"), "?q= syntax error")
        # helpers.scan: ?scroll=, _search/scroll, clear_scroll (test_paging.py does 25k docs)
        eq(sorted(h["_id"] for h in helpers.scan(es, index="products", size=3,
                                                  query={"query": {"match_all": {}}})),
           sorted(DOCS), "helpers.scan yields every document once")

        # errors
        eq(error_of(lambda: es.search(index="nope", query={"match_all": {}}), NotFoundError),
           (404, "index_not_found_exception"), "search a missing index")
        eq(error_of(lambda: es.search(index="products", query={"no_such_query": {}}),
                    RequestError), (400, "parsing_exception"), "unknown query")
        eq(error_of(lambda: es.search(index="products", query={"function_score": {
            "query": {"match_all": {}}, "script_score": {"script": {"source": "_score * ("}}}}),
                    RequestError), (400, "script_exception"), "expression that does not compile")
        eq(error_of(lambda: es.count(index="nope"), NotFoundError),
           (404, "index_not_found_exception"), "count of a missing index")


if __name__ == "__main__":
    print("# elasticsearch-py %s under %s" % (".".join(map(str, elasticsearch.__version__)),
                                              sys.executable))
    run_tests([
        ("client_product_check_accepts_the_server", t_product_check),
        ("indices_create_exists_mapping_delete_and_their_errors", t_indexes),
        ("documents_index_get_update_delete_and_their_errors", t_documents),
        ("helpers_bulk_refresh_and_count", t_bulk_refresh_count),
        ("search_match_and_function_score_expression_rank_as_computed", t_search),
    ])
