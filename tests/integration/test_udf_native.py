"""test_udf_native.py: the UDF native tier end to end on a real quidditch process (default
`--udf-tier auto`): the example custom_score is deployed, function_score searches run it on
the interpreter at once, a background LLVM compile and the verified swap take it to native
code (GET /_udf/custom_score says native-jit), and every search's scores are the same bytes
in the JSON before, during and after the swap. A restart on the same data reaches native code
from DATA/cache (native-cache, cache_hit, quidditch_udf_cache_hits_total >= 1) with the same
scores. The pinned interpreter (`--udf-tier interp`) is test_udf_tier.py."""
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, eq, multipart, run_tests  # noqa: E402

DEADLINE_S = 60
SCORE = re.compile(r'"_id"\s*:\s*"([^"]*)".*?"_score"\s*:\s*([^,}\s]+)')


def udf_wasm():
    for kind in ("c", "wat"):
        p = os.path.join(BUILD, "examples", "udfs", "custom_score.%s.wasm" % kind)
        if os.path.exists(p):
            return p
    paths = sorted(glob.glob(os.path.join(BUILD, "examples", "udfs", "custom_score.*.wasm")))
    return paths[0] if paths else None


def deploy(s, path):
    with open(os.path.join(SOURCE, "examples", "udfs", "custom_score", "custom_score.json"),
              "rb") as f:
        manifest = f.read()
    with open(path, "rb") as f:
        wasm = f.read()
    body, ctype = multipart([("manifest", None, "application/json", manifest),
                             ("wasm", os.path.basename(path), "application/wasm", wasm)])
    r = s.http("PUT", "/_udf/custom_score", body, ctype)
    eq(r.status, 200, "deploy custom_score: %r" % r)


QUERY = {"size": 50, "query": {"function_score": {
    "query": {"match": {"title": "laptop"}},
    "script_score": {"script": {"source": "custom_score", "params": {
        "boost_factor": 1.2, "recency_days": "_source.days_since_created",
        "user_tier": "_context.user.tier"}}},
    "boost_mode": "replace"}}, "context": {"user": {"tier": 2}}}


def scores(s):
    """(id, score as the JSON spells it) for every hit, in order: the bytes, not floats."""
    r = s.http("POST", "/shop/_search", QUERY)
    eq(r.status, 200, "function_score search: %r" % r)
    hits = r.text[r.text.index('"hits"'):]
    out = SCORE.findall(hits)
    eq(len(out), len(r.json["hits"]["hits"]), "every hit's score read")
    return out


def node(s):
    r = s.http("GET", "/_udf/custom_score")
    eq(r.status, 200, "GET /_udf/custom_score: %r" % r)
    return list(r.json["nodes"].values())[0]


def until_tier(s, want, base):
    """Search (each search is one block per segment: the verified swap counts them) until the
    node's tier is WANT; every search's scores must equal BASE. Returns the node's status."""
    end = time.time() + DEADLINE_S
    while True:
        eq(scores(s), base, "scores while waiting for %s" % want)
        n = node(s)
        if n["tier"] == want and n["native"] == "ready":
            return n
        check(n["native"] != "failed", "the native tier failed", n)
        check(time.time() < end, "no %s within %d s" % (want, DEADLINE_S), n, s.logtext()[-3000:])
        time.sleep(0.05)


def metric(s, name):
    r = s.http("GET", "/metrics")
    eq(r.status, 200, "metrics")
    m = re.search(r"^%s\{[^}]*\} (\S+)$" % re.escape(name), r.text, re.M)
    check(m is not None, "metric %s present" % name, r.text[-2000:])
    return float(m.group(1))


def t_native_swap_and_cache():
    path = udf_wasm()
    if path is None:
        print("# SKIP no built custom_score example (build the udf_examples target)")
        sys.exit(77)
    with Server() as s:
        docs = []
        for i in range(40):
            docs.append({"index": {"_index": "shop", "_id": str(i)}})
            d = {"title": "laptop %d" % i + (" laptop" if i % 3 == 0 else ""),
                 "price": 10.0 + i * 7.5}
            if i % 4:
                d["days_since_created"] = i * 3
            docs.append(d)
        r = s.bulk(docs)
        eq(r.status, 200, "bulk: %r" % r)
        check(not r.json["errors"], "bulk errors", r)
        deploy(s, path)
        base = scores(s)  # the interpreter, at once
        check(len(base) == 40, "every laptop matched", base)
        n = until_tier(s, "native-jit", base)
        eq(n["cache_hit"], False, "compiled, not from the cache")
        check(n["compile_ms"] > 0, "compile time shown", n)
        for _ in range(3):
            eq(scores(s), base, "scores on native code")
        log = s.logtext()
        check(re.search(r"JIT compilation of custom_score v1 completed in \d+ ms", log),
              "the compile's INFO line", log[-3000:])
        check("hot-swapped to native" in log, "the swap's INFO line", log[-3000:])
        eq(metric(s, "quidditch_udf_cache_hits_total"), 0.0, "no cache hit yet")
        end = time.time() + DEADLINE_S  # the object is written just after the swap
        while metric(s, "quidditch_udf_cache_entries") < 1:
            check(time.time() < end, "the object went into the cache", s.logtext()[-3000:])
            time.sleep(0.05)
        check(os.listdir(os.path.join(s.data, "cache")), "DATA/cache holds the entry")

        s.restart()
        n = until_tier(s, "native-cache", base)
        eq(n["cache_hit"], True, "from the cache after a restart")
        check(metric(s, "quidditch_udf_cache_hits_total") >= 1, "a cache hit counted")
        eq(scores(s), base, "scores on cached native code")
        check("native cache load of custom_score v1" in s.logtext(), "the cache load's INFO line")


if __name__ == "__main__":
    run_tests([("udf_native_swap_and_cache", t_native_swap_and_cache)])
