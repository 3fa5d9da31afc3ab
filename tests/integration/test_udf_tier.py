"""test_udf_tier.py: a UDF's tier as GET /_udf/{name} shows it, on a real quidditch process
started with `--udf-tier interp`: every version stays on the interpreter and says why; a
deploy with a `native-x86_64` artifact (and a signature) is accepted, the node does not load
the artifact and GET /_udf/{name} says why (the artifact's own checks are unit tests in
tests/unit/udf/test_artifact.c; the native tier itself: test_udf_native.py)."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import SOURCE, Server, check, eq, multipart, run_tests, wat2wasm  # noqa: E402

WAT = """(module
  (func (export "twice") (param $s f64) (result f64)
    (f64.mul (local.get $s) (f64.const 2))))"""
MANIFEST = {"name": "twice", "params": [{"name": "s", "type": "f64", "default": "_score"}],
            "returns": "f64"}


def t_tier_and_artifact():
    w = wat2wasm(WAT)
    if w is None:
        print("# SKIP wat2wasm not installed")
        sys.exit(77)
    with open(os.path.join(SOURCE, "tests", "fuzz", "corpus", "artifact",
                           "custom_score-x86_64.qdn"), "rb") as f:
        art = f.read()
    with Server(extra=["--udf-tier", "interp"]) as s:
        body, ctype = multipart([
            ("manifest", None, "application/json", json.dumps(MANIFEST).encode()),
            ("wasm", "twice.wasm", "application/wasm", w),
            ("native-x86_64", "twice.x86_64.qdn", "application/octet-stream", art),
            ("native-aarch64", "twice.aarch64.qdn", "application/octet-stream", art),
            ("signature", "twice.sig", "application/octet-stream", b"\x01" * 64)])
        r = s.http("PUT", "/_udf/twice", body, ctype)
        eq(r.status, 200, "deploy with artifacts: %r" % r)
        r = s.http("GET", "/_udf/twice")
        eq(r.status, 200, "get: %r" % r)
        nodes = r.json["nodes"]
        eq(len(nodes), 1, "one node")
        n = list(nodes.values())[0]
        eq(n["tier"], "interpreter", "tier")
        eq(n["status"], "ready", "status")
        eq(n["native"], "off", "native state")
        eq(n["cache_hit"], False, "cache hit")
        eq(n["reason"], "the node is pinned to the interpreter", "reason")
        check("uploaded artifact not used" in n["artifact"]
              and "pinned to the interpreter" in n["artifact"], "artifact note", n)
        r = s.http("PUT", "/idx/_doc/1?refresh=true", {"x": 1})
        check(r.status in (200, 201), "index a doc", r)
        q = {"query": {"function_score": {"query": {"match_all": {}}, "script_score": {
            "script": {"source": "twice"}}, "boost_mode": "replace"}}}
        for _ in range(12):  # more blocks than the verified swap needs: still interpreted
            r = s.http("POST", "/idx/_search", q)
            eq(r.status, 200, "search: %r" % r)
            eq(r.json["hits"]["hits"][0]["_score"], 2.0, "score")
        n = list(s.http("GET", "/_udf/twice").json["nodes"].values())[0]
        eq(n["tier"], "interpreter", "pinned: still the interpreter")
        eq(n["native"], "off", "pinned: never compiled")
        check("JIT compilation" not in s.logtext(), "pinned: no compile in the log")
        # a plain deploy has no artifact note; searches still run it
        r = s.http("PUT", "/_udf/twice", w, "application/wasm")
        eq(r.status, 200, "raw deploy: %r" % r)
        n = list(s.http("GET", "/_udf/twice").json["nodes"].values())[0]
        check("artifact" not in n, "no artifact note for v2", n)


if __name__ == "__main__":
    run_tests([("udf_tier_in_get_udf", t_tier_and_artifact)])
