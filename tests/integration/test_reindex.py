"""test_reindex.py: _update with a script (expression and UDF), upsert and scripted_upsert,
_update_by_query (expression and a transform UDF rewriting documents) and _reindex (query,
max_docs, dest.op_type, conflicts) against a real quidditch; expected documents are computed
here from what the test wrote."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, eq, check, run_tests, skip, wat2wasm  # noqa: E402

# returns its string argument (the UDF of test_udf.py): the document's "patch" field, a JSON text
IDENT_WAT = """(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func (export "qd_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get $n)))
    (local.get $p))
  (func (export "qd_reset") (global.set $top (i32.const 1024)))
  (func (export "ident") (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n)))))"""

DOCS = {str(i): {"n": i, "color": ["red", "blue"][i % 2], "name": "d%d" % i} for i in range(20)}


def load(s, index="src"):
    lines = []
    for i, d in DOCS.items():
        lines += [{"index": {"_id": i}}, d]
    s.bulk(lines, "/%s/_bulk?refresh=true" % index)


def src(s, index, id):
    return s.http("GET", "/%s/_source/%s" % (index, id)).json


def t_update_script():
    with Server() as s:
        load(s)
        r = s.http("POST", "/src/_update/3", {"script": {
            "source": "ctx._source.n += params.x; ctx._source.tag = 'v' + params.x",
            "params": {"x": 5}}})
        eq((r.status, r.json["result"]), (200, "updated"), "scripted update: %r" % r)
        eq(src(s, "src", "3"), dict(DOCS["3"], n=8, tag="v5"), "n += 5 and a string")
        s.http("POST", "/src/_update/3", {"script": "ctx._source.n++"})
        eq(src(s, "src", "3")["n"], 9, "++")
        s.http("POST", "/src/_update/3", {"script": "ctx._source.n = ctx._source.n * 2 / 3"})
        eq(src(s, "src", "3")["n"], 9 * 2 // 3, "integer arithmetic, as Painless")
        r = s.http("POST", "/src/_update/3", {"script": "ctx.op = 'noop'"})
        eq(r.json["result"], "noop", "noop")
        r = s.http("POST", "/src/_update/4", {"script": "ctx.op = 'delete'"})
        eq((r.json["result"], s.http("GET", "/src/_doc/4").status), ("deleted", 404), "delete")
        for bad, word in [("if (ctx._source.n > 1) { ctx._source.n = 0 }", "if"),
                          ("ctx._source.name.toUpperCase()", "toUpperCase"),
                          ("ctx._source.n += params.missing", "params")]:
            r = s.http("POST", "/src/_update/5", {"script": {"source": bad, "params": {}}})
            eq(r.status, 400, "refused: " + bad)
            check(word in r.json["error"]["reason"], "names the construct " + word, r.json)
        eq(src(s, "src", "5"), DOCS["5"], "a refused script changed nothing")
        r = s.http("POST", "/src/_update/new", {"script": "ctx._source.n += 1", "upsert": {"n": 1}})
        eq((r.status, src(s, "src", "new")), (201, {"n": 1}), "upsert, script not run")
        r = s.http("POST", "/src/_update/new2", {"script": "ctx._source.n += 1", "upsert": {"n": 1},
                                                 "scripted_upsert": True})
        eq(src(s, "src", "new2"), {"n": 2}, "scripted_upsert runs the script")
        eq(s.http("POST", "/src/_update/none", {"script": "ctx._source.n = 1"}).status, 404,
           "missing without upsert")


def t_update_by_query():
    with Server() as s:
        load(s)
        r = s.http("POST", "/src/_update_by_query?refresh=true", {
            "query": {"term": {"color": "red"}},
            "script": {"source": "ctx._source.n *= 10", "params": {}}})
        reds = [i for i, d in DOCS.items() if d["color"] == "red"]
        eq((r.status, r.json["total"], r.json["updated"], r.json["version_conflicts"]),
           (200, len(reds), len(reds), 0), "ubq counts: %r" % r)
        for i, d in DOCS.items():
            eq(src(s, "src", i)["n"], d["n"] * 10 if d["color"] == "red" else d["n"], "doc " + i)
        r = s.http("POST", "/src/_count", {"query": {"range": {"n": {"gte": 100}}}})
        eq(r.json["count"], sum(1 for d in DOCS.values() if d["color"] == "red" and d["n"] >= 10),
           "searchable after ?refresh")
        r = s.http("POST", "/src/_update_by_query", {"max_docs": 3, "script": "ctx._source.m = 1"})
        eq(r.json["updated"], 3, "max_docs")
        eq(s.http("POST", "/src/_update_by_query", {"script": "for (x in y) {}"}).status, 400,
           "a loop is refused")
        eq(s.http("POST", "/src/_update_by_query", {"slices": 2}).status, 400, "unknown key")


def t_update_by_query_udf():
    with Server() as s:
        w = wat2wasm(IDENT_WAT)
        if w is None:
            skip("wat2wasm not installed")
        import urllib.parse
        r = s.http("PUT", "/_udf/ident?kind=transform&returns=string&params=" +
                   urllib.parse.quote('[{"name": "s", "type": "string"}]'), w, "application/wasm")
        eq(r.status, 200, "deploy: %r" % r)
        lines = []
        for i in range(5):
            lines += [{"index": {"_id": str(i)}},
                      {"n": i, "patch": json.dumps({"n": i * i, "done": True})}]
        s.bulk(lines, "/u/_bulk?refresh=true")
        r = s.http("POST", "/u/_update_by_query", {"query": {"range": {"n": {"gte": 2}}}, "script": {
            "source": "ident", "params": {"s": "_source.patch"}}})
        eq((r.status, r.json["updated"]), (200, 3), "UDF ubq: %r" % r)
        for i in range(5):
            d = src(s, "u", str(i))
            eq((d["n"], d.get("done")), (i * i, True) if i >= 2 else (i, None), "doc %d" % i)
        r = s.http("POST", "/u/_update/0", {"script": {"source": "ident",
                                                       "params": {"s": "_source.patch"}}})
        eq((r.status, src(s, "u", "0")["done"]), (200, True), "_update with a UDF")
        r = s.http("POST", "/u/_update/1", {"script": {"source": "ident", "params": {"s": "x"}}})
        eq(r.status, 400, "a result that is not a JSON object: %r" % r)


def t_reindex():
    with Server() as s:
        load(s)
        r = s.http("POST", "/_reindex?refresh=true", {"source": {"index": "src"}, "dest": {"index": "dst"}})
        eq((r.status, r.json["total"], r.json["created"]), (200, len(DOCS), len(DOCS)), "reindex: %r" % r)
        eq(s.http("POST", "/dst/_count").json["count"], len(DOCS), "all copied")
        eq(src(s, "dst", "7"), DOCS["7"], "source copied as is")
        r = s.http("POST", "/_reindex", {"source": {"index": "src", "query": {"term": {"color": "blue"}}},
                                         "dest": {"index": "blues"}, "max_docs": 4})
        eq((r.json["total"], r.json["created"]), (4, 4), "query + max_docs")
        s.http("POST", "/blues/_refresh")
        hits = s.http("POST", "/blues/_search", {"size": 20}).json["hits"]["hits"]
        check(all(h["_source"]["color"] == "blue" for h in hits) and len(hits) == 4, "blues", hits)
        # op_type create over existing documents: conflicts
        r = s.http("POST", "/_reindex", {"source": {"index": "src"},
                                         "dest": {"index": "dst", "op_type": "create"}})
        eq((r.status, r.json["version_conflicts"] >= 1, r.json["created"]), (409, True, 0),
           "abort on the first conflict")
        r = s.http("POST", "/_reindex", {"source": {"index": "src"}, "conflicts": "proceed",
                                         "dest": {"index": "dst", "op_type": "create"}})
        eq((r.status, r.json["version_conflicts"], r.json["created"]), (200, len(DOCS), 0), "proceed")
        r = s.http("POST", "/_reindex", {"source": {"index": "src"}, "dest": {"index": "dst"},
                                         "script": "ctx._source.n += 1000"})
        eq((r.json["updated"], src(s, "dst", "2")["n"]), (len(DOCS), 1002), "op_type index + script")
        eq(s.http("POST", "/_reindex", {"source": {"index": "nope"}, "dest": {"index": "x"}}).status,
           404, "missing source")
        eq(s.http("POST", "/_reindex", {"source": {"index": "src", "remote": {}},
                                        "dest": {"index": "x"}}).status, 400, "remote refused")
        eq(s.http("POST", "/_reindex", {"source": {"index": "src"}, "dest": {"index": "src"}}).status,
           400, "into itself")


if __name__ == "__main__":
    run_tests([("update_with_a_script", t_update_script),
               ("update_by_query_with_an_expression", t_update_by_query),
               ("update_by_query_with_a_udf_rewriting_documents", t_update_by_query_udf),
               ("reindex_query_max_docs_op_type_conflicts", t_reindex)])
