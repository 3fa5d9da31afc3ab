"""test_examples.py: the example UDFs the build compiles (build/examples/udfs/<name>.<lang>.wasm,
from examples/udfs/ in C, Rust, AssemblyScript and WAT) deployed with their manifests into a real
quidditch and used the way DESIGN.md §5 shows; results compared with values computed here.
Examples whose toolchain was missing are skipped one by one."""
import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, close, eq, multipart, run_tests, skip  # noqa: E402

DOCS = [("1", {"title": "Fast Laptop", "price": 999.0, "cost": 700.0, "stock": 3,
               "days_since_created": 3, "items": 10, "box_size": 5}),
        ("2", {"title": "Laptop Bag", "price": 30.0, "cost": 12.0, "stock": 0,
               "days_since_created": 120, "items": 7, "box_size": 0}),
        ("3", {"title": "Gaming laptop with laptop stand", "price": 1500.0, "cost": 1400.0,
               "stock": 1, "items": 9, "box_size": 3})]
MAPPINGS = {"mappings": {"properties": {
    "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    "price": {"type": "double"}, "cost": {"type": "double"}, "stock": {"type": "long"},
    "days_since_created": {"type": "integer"}, "items": {"type": "integer"},
    "box_size": {"type": "integer"}}}}


def builds(name):
    return sorted(glob.glob(os.path.join(BUILD, "examples", "udfs", name + ".*.wasm")))


def manifest(name):
    with open(os.path.join(SOURCE, "examples", "udfs", name, name + ".json"), "rb") as f:
        return f.read()


def deploy(s, name, path):
    with open(path, "rb") as f:
        wasm = f.read()
    body, ctype = multipart([("manifest", None, "application/json", manifest(name)),
                             ("wasm", os.path.basename(path), "application/wasm", wasm)])
    r = s.http("PUT", "/_udf/" + name, body, ctype)
    eq(r.status, 200, "deploy %s: %r" % (os.path.basename(path), r))
    return r.json


def setup(s):
    eq(s.http("PUT", "/shop", MAPPINGS).status, 200, "create index")
    lines = []
    for i, d in DOCS:
        lines += [{"index": {"_id": i}}, d]
    r = s.bulk(lines, "/shop/_bulk?refresh=true")
    eq(r.json["errors"], False, "bulk")


def tier_boost(t):
    return {1: 1.5, 2: 1.2, 3: 1.0}.get(t, 0.8)


def t_custom_score_every_language():
    paths = builds("custom_score")
    if not paths:
        skip("no custom_score example built")
    with Server() as s:
        setup(s)
        r = s.http("POST", "/shop/_search", {"query": {"match": {"title": "laptop"}}})
        bm25 = {h["_id"]: h["_score"] for h in r.json["hits"]["hits"]}
        days = {i: d.get("days_since_created", 365) for i, d in DOCS}
        for path in paths:
            j = deploy(s, "custom_score", path)
            for tier in (1, 2, 7):
                r = s.http("POST", "/shop/_search", {
                    "query": {"function_score": {
                        "query": {"match": {"title": "laptop"}},
                        "script_score": {"script": {"source": "custom_score", "params": {
                            "boost_factor": 1.2, "recency_days": "_source.days_since_created",
                            "user_tier": "_context.user.tier"}}},
                        "boost_mode": "replace"}},
                    "context": {"user": {"tier": tier}}})
                eq(r.status, 200, "%s search: %r" % (os.path.basename(path), r))
                for h in r.json["hits"]["hits"]:
                    d = max(days[h["_id"]], 0)
                    want = (bm25[h["_id"]] * 1.2) * (1 + 1 / (1 + d / 30)) * tier_boost(tier)
                    close(h["_score"], want, 1e-6, "%s v%d doc %s tier %d" % (  # _score is a float
                        os.path.basename(path), j["version"], h["_id"], tier))
        print("# custom_score checked in: %s" % ", ".join(os.path.basename(p) for p in paths))


def t_other_examples():
    with Server() as s:
        setup(s)
        done = []
        for path in builds("title_slug"):
            deploy(s, "title_slug", path)
            r = s.http("POST", "/shop/_search", {"query": {"ids": {"values": ["1", "3"]}},
                                                 "script_fields": {"slug": {"script": {
                                                     "source": "title_slug"}}}})
            eq(r.status, 200, "title_slug: %r" % r)
            got = {h["_id"]: h["fields"]["slug"][0] for h in r.json["hits"]["hits"]}
            eq(got, {"1": "fast-laptop", "3": "gaming-laptop-with-laptop-stand"},
               os.path.basename(path))
            done.append(os.path.basename(path))
        for path in builds("title_initials"):  # wasi-libc malloc without free (sdk/c)
            deploy(s, "title_initials", path)
            r = s.http("POST", "/shop/_search", {"query": {"ids": {"values": ["1", "3"]}},
                                                 "script_fields": {"ini": {"script": {
                                                     "source": "title_initials"}}}})
            eq(r.status, 200, "title_initials: %r" % r)
            got = {h["_id"]: h["fields"]["ini"][0] for h in r.json["hits"]["hits"]}
            eq(got, {"1": "FL", "3": "GLWLS"}, os.path.basename(path))
            # "_source.title" on a text field without a keyword sub-field reads the stored
            # _source, long values (past any ignore_above) included
            if s.http("HEAD", "/plain").status == 404:
                eq(s.http("PUT", "/plain", {"mappings": {"properties": {
                    "title": {"type": "text"}}}}).status, 200, "create plain")
                s.bulk([{"index": {"_id": "p"}}, {"title": "Long " + "word " * 100 + "end"}],
                       "/plain/_bulk?refresh=true")
            r = s.http("POST", "/plain/_search", {"_source": False, "script_fields": {"ini": {
                "script": {"source": "title_initials"}}}})
            eq(r.status, 200, "title_initials on a text-only field: %r" % r)
            eq(r.json["hits"]["hits"][0]["fields"]["ini"], ["LW" + "W" * 99 + "E"],
               "from the stored _source")
            done.append(os.path.basename(path))
        for path in builds("in_stock_and_cheap"):
            deploy(s, "in_stock_and_cheap", path)
            r = s.http("POST", "/shop/_search", {"query": {"bool": {"filter": [{"script": {
                "script": {"source": "in_stock_and_cheap", "params": {"max_price": 1000}}}}]}}})
            eq(r.status, 200, "in_stock_and_cheap: %r" % r)
            eq(sorted(h["_id"] for h in r.json["hits"]["hits"]),
               sorted(i for i, d in DOCS if d["stock"] > 0 and d["price"] <= 1000),
               os.path.basename(path))
            done.append(os.path.basename(path))
        for path in builds("margin"):
            deploy(s, "margin", path)
            r = s.http("POST", "/shop/_search", {"size": 0, "aggs": {"m": {"avg": {"script": {
                "source": "margin"}}}}})
            eq(r.status, 200, "margin: %r" % r)
            want = sum((d["price"] - d["cost"]) / d["price"] for _, d in DOCS) / len(DOCS)
            close(r.json["aggregations"]["m"]["value"], want, 1e-9, os.path.basename(path))
            done.append(os.path.basename(path))
        for path in builds("trap_div"):
            deploy(s, "trap_div", path)
            r = s.http("POST", "/shop/_search", {"query": {"function_score": {
                "query": {"match_all": {}}, "script_score": {"script": {"source": "trap_div"}},
                "boost_mode": "replace"}}})
            eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "trap_div: %r" % r)
            check("integer divide by zero" in r.json["error"]["reason"], "trap reason", r)
            r = s.http("POST", "/shop/_search", {"query": {"function_score": {
                "query": {"ids": {"values": ["1", "3"]}},
                "script_score": {"script": {"source": "trap_div"}}, "boost_mode": "replace"}}})
            eq(r.status, 200, "trap_div without the zero: %r" % r)
            eq({h["_id"]: h["_score"] for h in r.json["hits"]["hits"]}, {"1": 2.0, "3": 3.0},
               "items / box_size")
            done.append(os.path.basename(path))
        for path in builds("infinite_loop"):
            deploy(s, "infinite_loop", path)
            r = s.http("POST", "/shop/_search", {"query": {"function_score": {
                "query": {"match_all": {}}, "script_score": {"script": {
                    "source": "infinite_loop"}}}}})
            eq((r.status, r.json["error"]["type"]), (400, "script_exception"), "spin: %r" % r)
            done.append(os.path.basename(path))
        eq(s.http("GET", "/").status, 200, "still serving")
        print("# examples checked: %s" % (", ".join(done) or "none built"))


if __name__ == "__main__":
    run_tests([
        ("custom_score_example_in_every_language_ranks_as_computed", t_custom_score_every_language),
        ("slug_filter_metric_trap_and_loop_examples", t_other_examples),
    ])
