"""test_udf.py: WebAssembly UDFs through a real quidditch process: deploy (multipart and raw),
use by name in function_score / script_score / script filters, scores compared with values
computed here, a trapping UDF failing its own request while concurrent searches succeed,
versions and rollback, _test, stats and metrics, restart keeping every version."""
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import (Server, check, check_prometheus, close, eq, multipart, run_tests,  # noqa: E402
                    skip, wat2wasm)

# score = _score * f + 1 / (days + 1)
BOOST_WAT = """(module
  (func (export "boost") (param $s f64) (param $f f64) (param $d i32) (result f64)
    (f64.add (f64.mul (local.get $s) (local.get $f))
             (f64.div (f64.const 1) (f64.convert_i32_s (i32.add (local.get $d) (i32.const 1)))))))"""
# version 2: score = _score * f * 10
BOOST2_WAT = """(module
  (func (export "boost") (param $s f64) (param $f f64) (param $d i32) (result f64)
    (f64.mul (f64.mul (local.get $s) (local.get $f)) (f64.const 10))))"""
BOOST_MANIFEST = {"kind": "score", "description": "bm25 * f + 1/(days+1)",
                  "params": [{"name": "s", "type": "f64", "default": "_score"},
                             {"name": "f", "type": "f64", "default": 2},
                             {"name": "d", "type": "i32", "default": "doc['days']", "missing": 0}],
                  "returns": "f64"}
DIV_WAT = """(module
  (func (export "div") (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b))))"""
SPIN_WAT = """(module
  (func (export "spin") (param $s f64) (result f64)
    (loop $l (br $l)) (local.get $s)))"""
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
CHEAP_WAT = """(module
  (func (export "cheap") (param $p f64) (param $max f64) (result i32)
    (f64.lt (local.get $p) (local.get $max))))"""

DOCS = [("1", {"title": "fast laptop", "price": 999.5, "days": 3}),
        ("2", {"title": "laptop bag", "price": 30, "days": 100}),
        ("3", {"title": "gaming laptop laptop", "price": 1500, "days": 10}),
        ("4", {"title": "phone case", "price": 12, "days": 1}),
        ("5", {"title": "old laptop", "price": 50})]
DAYS = {i: d.get("days", 0) for i, d in DOCS}
PRICE = {i: d["price"] for i, d in DOCS}


def need_wasm(text):
    w = wat2wasm(text)
    if w is None:
        skip("wat2wasm not installed")
    return w


def setup(s):
    r = s.http("PUT", "/products", {"mappings": {"properties": {
        "title": {"type": "text"}, "price": {"type": "double"}, "days": {"type": "integer"}}}})
    eq(r.status, 200, "create: %r" % r)
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_id": i}}, d]
    r = s.bulk(lines, "/products/_bulk?refresh=true")
    eq(r.json["errors"], False, "bulk")


def deploy_boost(s, wat=BOOST_WAT):
    body, ctype = multipart([("manifest", None, "application/json",
                              __import__("json").dumps(BOOST_MANIFEST).encode()),
                             ("wasm", "boost.wasm", "application/wasm", need_wasm(wat))])
    r = s.http("PUT", "/_udf/boost", body, ctype)
    eq(r.status, 200, "deploy boost: %r" % r)
    return r.json


def bm25(s, q="laptop"):
    r = s.http("POST", "/products/_search", {"query": {"match": {"title": q}}, "size": 20})
    eq(r.status, 200, "bm25 search: %r" % r)
    return {h["_id"]: h["_score"] for h in r.json["hits"]["hits"]}


def fscore(s, params, source="boost", extra=None):
    body = {"query": {"function_score": {
        "query": {"match": {"title": "laptop"}},
        "script_score": {"script": {"source": source, "params": params}},
        "boost_mode": "replace"}}, "size": 20}
    if extra:
        body.update(extra)
    return s.http("POST", "/products/_search", body)


def t_deploy_and_score():
    with Server() as s:
        setup(s)
        j = deploy_boost(s)
        eq((j["name"], j["version"], j["kind"]), ("boost", 1, "score"), "deploy response")
        check(len(j["sha256"]) == 64 and j["size"] > 0, "hash and size", j)
        base = bm25(s)
        r = fscore(s, {"f": 3})
        eq(r.status, 200, "function_score with a UDF: %r" % r)
        hits = r.json["hits"]["hits"]
        eq(sorted(h["_id"] for h in hits), sorted(base), "same hits as the query")
        for h in hits:
            want = base[h["_id"]] * 3 + 1 / (DAYS[h["_id"]] + 1)
            close(h["_score"], want, 1e-6, "UDF score of %s" % h["_id"])
        scores = [h["_score"] for h in hits]
        eq(scores, sorted(scores, reverse=True), "ranked by the UDF")
        # params from the request context, and the manifest default for f
        r = fscore(s, {"f": "_context.user.boost"}, extra={"context": {"user": {"boost": 0.5}}})
        eq(r.status, 200, "context param: %r" % r)
        for h in r.json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] * 0.5 + 1 / (DAYS[h["_id"]] + 1), 1e-6, "context")
        r = fscore(s, {})
        for h in r.json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] * 2 + 1 / (DAYS[h["_id"]] + 1), 1e-6, "default f")
        # the script_score query form
        r = s.http("POST", "/products/_search", {"query": {"script_score": {
            "query": {"match": {"title": "laptop"}},
            "script": {"source": "boost", "lang": "wasm", "params": {"f": 1}}}}, "size": 20})
        eq(r.status, 200, "script_score query: %r" % r)
        for h in r.json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] + 1 / (DAYS[h["_id"]] + 1), 1e-6, "script_score")
        # an expression still works next to UDFs
        r = fscore(s, {"k": 2}, source="_score * params.k")
        eq(r.status, 200, "expression: %r" % r)
        for h in r.json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] * 2, 1e-6, "expression score")
        # _test
        r = s.http("POST", "/_udf/boost/_test", {"args": {"_score": 1.5, "f": 2, "days": 3}})
        eq(r.status, 200, "_test: %r" % r)
        close(r.json["result"], 1.5 * 2 + 0.25, 1e-12, "_test result")
        # status with stats, and metrics
        r = s.http("GET", "/_udf/boost")
        eq((r.status, r.json["version"]), (200, 1), "status")
        # the interpreter at once; native code once the background compile and the verified
        # swap are done (test_udf_native.py), which may already be the case here
        check(r.json["tier"] in ("interpreter", "native"), "tier", r)
        check(r.json["stats"]["calls"] > 0, "calls counted", r)
        m = s.http("GET", "/metrics").text
        check_prometheus(m)
        check('quidditch_udf_calls_total{udf="boost",mode="interpreter"' in m, "udf metric", m[:3000])
        check("quidditch_http_requests_total{" in m and "quidditch_search_duration_seconds_bucket"
              in m, "http/search metrics")
        check("UDF deployed: boost (v1" in s.logtext(), "deploy log line", s.logtext())


def t_filter_udf_and_raw_deploy():
    with Server() as s:
        setup(s)
        r = s.http("PUT", "/_udf/cheap?kind=filter&description=price%20below%20max",
                   need_wasm(CHEAP_WAT), "application/wasm")
        eq(r.status, 200, "raw deploy: %r" % r)
        eq(r.json["kind"], "filter", "kind from query parameter")
        r = s.http("POST", "/products/_search", {"query": {"bool": {"filter": [{"script": {"script": {
            "source": "cheap", "params": {"p0": "doc['price']", "p1": 100}}}}]}}, "size": 20})
        eq(r.status, 200, "script filter: %r" % r)
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]),
           sorted(i for i, p in PRICE.items() if p < 100), "filtered ids")
        # a transform returning a string feeds script_fields
        r = s.http("PUT", "/_udf/ident?kind=transform&returns=string&params=" +
                   urllib.parse.quote('[{"name": "s", "type": "string"}]'),
                   need_wasm(IDENT_WAT), "application/wasm")
        eq(r.status, 200, "deploy ident: %r" % r)
        s.http("PUT", "/tags/_doc/1?refresh=true", {"brand": "acme"})
        r = s.http("POST", "/tags/_search", {"query": {"ids": {"values": ["1"]}}, "script_fields": {
            "b": {"script": {"source": "ident", "params": {"s": "doc['brand.keyword']"}}}}})
        eq(r.status, 200, "script_fields: %r" % r)
        eq(r.json["hits"]["hits"][0]["fields"]["b"], ["acme"], "string from the UDF")
        # a score UDF feeds a metric aggregation
        r = s.http("PUT", "/_udf/days_x2", need_wasm('(module (func (export "days_x2") (param i32) '
                                                     '(result f64) (f64.convert_i32_s (i32.mul '
                                                     '(local.get 0) (i32.const 2)))))'),
                   "application/wasm")
        eq(r.status, 200, "deploy days_x2: %r" % r)
        r = s.http("POST", "/products/_search", {"size": 0, "aggs": {"d": {"sum": {"script": {
            "source": "days_x2", "params": {"p0": {"field": "days", "missing": 0}}}}}}})
        eq(r.status, 200, "metric aggregation: %r" % r)
        close(r.json["aggregations"]["d"]["value"], 2 * sum(DAYS.values()), 1e-9, "sum of days*2")
        # using a filter UDF as a score is refused with a clear error
        r = fscore(s, {"p0": 1, "p1": 2}, source="cheap")
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "kind mismatch: %r" % r)


def t_trap_fails_request_not_node():
    with Server() as s:
        setup(s)
        r = s.http("PUT", "/_udf/div?kind=score", need_wasm(DIV_WAT), "application/wasm")
        eq(r.status, 200, "deploy div: %r" % r)
        deploy_boost(s)
        trap_body = {"query": {"function_score": {"query": {"match_all": {}}, "script_score": {
            "script": {"source": "div", "params": {"p0": "doc['days']", "p1": 0}}},
            "boost_mode": "replace"}}}
        r = s.http("POST", "/products/_search", trap_body)
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "trap: %r" % r)
        check("div v1 trapped: integer divide by zero" in r.json["error"]["reason"], "reason", r)
        results = {"good": [], "bad": []}

        def good():
            for _ in range(10):
                results["good"].append(fscore(s, {"f": 3}).status)

        def bad():
            for _ in range(10):
                results["bad"].append(s.http("POST", "/products/_search", trap_body).status)
        ts = [threading.Thread(target=good), threading.Thread(target=bad),
              threading.Thread(target=good)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        eq(results["good"], [200] * 20, "concurrent good searches")
        eq(results["bad"], [400] * 10, "concurrent trapping searches")
        r = s.http("PUT", "/_udf/spin?kind=score", need_wasm(SPIN_WAT), "application/wasm")
        eq(r.status, 200, "deploy spin: %r" % r)
        r = fscore(s, {"p0": "_score"}, source="spin")
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "endless loop: %r" % r)
        reason = r.json["error"]["reason"]
        check("spin v1" in reason and ("budget" in reason or "ran past its deadline" in reason),
              "budget or deadline reason (fuel, or the 1 s block deadline first on a slow build)", r)
        eq(fscore(s, {"f": 3}).status, 200, "searches after an endless loop")
        r = s.http("POST", "/_udf/div/_test", {"args": {"p0": 1, "p1": 0}})
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "_test trap: %r" % r)
        eq(s.http("GET", "/").status, 200, "node still serving")


def t_versions_rollback_restart():
    with Server() as s:
        setup(s)
        deploy_boost(s)
        base = bm25(s)
        j = deploy_boost(s, BOOST2_WAT)
        eq(j["version"], 2, "second deploy is v2")
        for h in fscore(s, {"f": 1}).json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] * 10, 1e-6, "v2 score")
        r = s.http("GET", "/_udf/boost/_versions")
        eq([(v["version"], v["current"]) for v in r.json["versions"]], [(1, False), (2, True)],
           "versions")
        r = s.http("GET", "/_udf/boost?version=v1")
        eq((r.status, r.json["version"], r.json["current"]), (200, 1, False), "status of v1")
        eq(s.http("GET", "/_udf/boost?version=v7").status, 404, "status of a missing version")
        r = s.http("POST", "/_udf/boost/_rollback", {"to": "v1"})
        eq((r.status, r.json["version"]), (200, 1), "rollback: %r" % r)
        for h in fscore(s, {"f": 1}).json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] + 1 / (DAYS[h["_id"]] + 1), 1e-6, "v1 again")
        r = s.http("POST", "/_udf/boost/_rollback", {"to": "v9"})
        eq(r.status, 404, "rollback to a missing version: %r" % r)
        # a bad deploy stores nothing
        r = s.http("PUT", "/_udf/boost", b"\0asm\x01\0\0\0garbage", "application/wasm")
        eq(r.status, 400, "garbage module: %r" % r)
        r = s.http("PUT", "/_udf/broken", b"not wasm at all", "application/wasm")
        eq(r.status, 400, "not wasm: %r" % r)
        eq(s.http("GET", "/_udf/broken").status, 404, "rejected UDF not stored")
        eq(len(s.http("GET", "/_udf/boost/_versions").json["versions"]), 2, "still two versions")
        s.kill()
        s.start()
        r = s.http("GET", "/_udf/boost/_versions")
        eq([(v["version"], v["current"]) for v in r.json["versions"]], [(1, True), (2, False)],
           "versions after SIGKILL + restart")
        for h in fscore(s, {"f": 1}).json["hits"]["hits"]:
            close(h["_score"], base[h["_id"]] + 1 / (DAYS[h["_id"]] + 1), 1e-6, "after restart")
        eq([u["name"] for u in s.http("GET", "/_udf").json["udfs"]], ["boost"], "list")
        r = s.http("DELETE", "/_udf/boost")
        eq(r.status, 200, "delete")
        eq(s.http("GET", "/_udf/boost").status, 404, "deleted")
        r = fscore(s, {"f": 1}, source="boost")
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"),
           "a deleted UDF's name is compiled as an expression and fails: %r" % r)


def t_one_search_one_version():
    """Deploys racing with searches over two indexes: every response is computed with one
    version of the UDF (v1: s*f + 1/(d+1), v2: s*f*10), never a mix. The searches go on (at
    least 30, at most 3000) until both versions were seen, so the test proves the deploys did
    race the searches; it fails if one version was never seen."""
    with Server() as s:
        setup(s)
        lines = []
        for i, d in DOCS:
            lines += [{"index": {"_index": "products2", "_id": i}}, d]
        eq(s.bulk(lines).json["errors"], False, "second index")
        deploy_boost(s)
        base = bm25(s)
        stop = threading.Event()
        errors = []

        bodies = [multipart([("manifest", None, "application/json",
                               __import__("json").dumps(BOOST_MANIFEST).encode()),
                              ("wasm", "b.wasm", "application/wasm", need_wasm(w))])
                  for w in (BOOST2_WAT, BOOST_WAT)]

        deploys = [0]

        def deployer():
            k = 0
            while not stop.is_set():
                body, ctype = bodies[k % 2]
                r = s.http("PUT", "/_udf/boost", body, ctype)
                if r.status != 200:
                    errors.append(r)
                k += 1
                deploys[0] = k
        th = threading.Thread(target=deployer)
        th.start()
        seen = set()
        searches = 0
        try:
            while searches < 30 or (len(seen) < 2 and searches < 3000 and not errors):
                searches += 1
                r = s.http("POST", "/products,products2/_search", {"size": 20, "query": {
                    "function_score": {"query": {"match": {"title": "laptop"}}, "script_score": {
                        "script": {"source": "boost", "params": {"s": "_score", "f": 1,
                                                                 "d": "doc['days']"}}},
                        "boost_mode": "replace"}}})
                if r.status != 200:
                    errors.append(r)
                    continue
                v1 = all(abs(h["_score"] - (base[h["_id"]] + 1 / (DAYS[h["_id"]] + 1))) < 1e-6
                         for h in r.json["hits"]["hits"])
                v2 = all(abs(h["_score"] - base[h["_id"]] * 10) < 1e-6
                         for h in r.json["hits"]["hits"])
                check(v1 or v2, "a response mixing UDF versions", r)
                seen.add("v1" if v1 else "v2")
        finally:
            stop.set()
            th.join()
        eq(errors, [], "errors while deploying during searches")
        print("# versions seen by %d searches during %d deploys: %s"
              % (searches, deploys[0], ", ".join(sorted(seen))))
        eq(sorted(seen), ["v1", "v2"], "UDF versions seen by the searches racing %d deploys"
           % deploys[0])


def t_errors_name_what_is_wrong():
    with Server() as s:
        setup(s)
        deploy_boost(s)
        # doc['F'] on a field the mapping lacks: Elasticsearch's error, not a silent missing
        r = fscore(s, {"f": 3, "d": "doc['dayz']"})
        eq(r.status, 400, "doc['dayz']: %r" % r)
        check("No field found for [dayz] in mapping" in r.json["error"]["reason"], "reason", r)
        r = fscore(s, {"f": 3}, source="doc['dayz'].value + _score")
        eq(r.status, 400, "expression doc['dayz']: %r" % r)
        check("No field found for [dayz] in mapping" in r.json["error"]["reason"], "reason", r)
        # a bare name that is no deployed UDF: say so, beside the expression error
        r = fscore(s, {}, source="bost")
        eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "bost: %r" % r)
        check("no UDF named [bost] is deployed (and it is not a valid expression)"
              in r.json["error"]["reason"], "reason names the missing UDF", r)
        # deploying a name whose export is missing names the export, not a manifest field
        body, ctype = multipart([("wasm", "boost.wasm", "application/wasm",
                                  need_wasm(BOOST_WAT))])
        r = s.http("PUT", "/_udf/boots", body, ctype)
        eq(r.status, 400, "deploy without the export: %r" % r)
        eq(r.json["error"]["reason"],
           "export boots: not found in the module (its functions: boost)", "reason")


if __name__ == "__main__":
    run_tests([
        ("errors_name_the_missing_field_udf_and_export", t_errors_name_what_is_wrong),
        ("deploy_then_rank_with_function_score_udf", t_deploy_and_score),
        ("filter_udf_and_raw_application_wasm_deploy", t_filter_udf_and_raw_deploy),
        ("trapping_udf_fails_its_request_while_others_succeed", t_trap_fails_request_not_node),
        ("versions_rollback_and_restart_keep_udfs", t_versions_rollback_restart),
        ("one_search_uses_one_udf_version_during_deploys", t_one_search_one_version),
    ])
