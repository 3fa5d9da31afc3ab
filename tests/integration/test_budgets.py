"""test_budgets.py: the UDF budgets and the script_fields result limits are `quidditch serve`
flags (issue 13), and every failed request is named by a request id in its log line and in its
response's header (and a slow search in its slow-log line). Against a real quidditch: a lowered budget takes effect (an infinite loop is
cut at a 100 ms block deadline instead of 1 s; a UDF that grows its memory by 2 MiB succeeds
under the default 16 MiB cap and traps under --udf-memory 1m), the result limits apply at a
small value, bad flag values are refused with a clear error, and the request id of a failed
search (made by the node, or the client's X-Opaque-Id) is found in the node's log."""
import glob
import json
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import BUILD, SOURCE, Server, check, eq, multipart, run_tests, skip, wat2wasm  # noqa: E402

LOOP_Q = {"query": {"function_score": {"query": {"ids": {"values": ["1"]}}, "script_score": {
    "script": {"source": "infinite_loop"}}}}}

# grows its memory by 32 pages (2 MiB); traps when the cap refuses
GROW_WAT = """(module (memory 1)
  (func (export "grow") (param $x i32) (result i32)
    (if (i32.eq (memory.grow (i32.const 32)) (i32.const -1)) (then unreachable))
    (i32.const 1))
  (func (export "qd_abi_version") (result i32) (i32.const 1)))"""

# recursion N deep (depth), and N loop turns (fuel)
DEEP_WAT = """(module
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n)) (then (i32.const 0))
      (else (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
  (func (export "deep") (param $n i32) (result i32) (call $down (local.get $n)))
  (func (export "turns") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "qd_abi_version") (result i32) (i32.const 1)))"""

BIG_WAT = """(module (memory (export "memory") 48)
  (func (export "qd_alloc") (param i32) (result i32) i32.const 8)
  (func (export "blob") (param f64) (result i64)
    local.get 0 i64.trunc_f64_u))"""


def deploy(s, name, man, wasm):
    body, ctype = multipart([("manifest", None, "application/json", man),
                             ("wasm", name + ".wasm", "application/wasm", wasm)])
    r = s.http("PUT", "/_udf/" + name, body, ctype)
    check(r.status == 200, "deploy " + name, r)


def deploy_loop(s):
    paths = glob.glob(os.path.join(BUILD, "examples", "udfs", "infinite_loop.*.wasm"))
    if not paths:
        skip("the infinite_loop example is not built")
    with open(os.path.join(SOURCE, "examples", "udfs", "infinite_loop", "infinite_loop.json"),
              "rb") as f:
        man = f.read()
    with open(paths[0], "rb") as f:
        deploy(s, "infinite_loop", man, f.read())


def index_one(s):
    eq(s.http("PUT", "/p/_doc/1?refresh=true", {"n": 1}).status, 201, "index a document")


def t_block_deadline_flag():
    """--udf-block-timeout-ms 100: the infinite loop fails with a deadline of 100 ms (the default
    would say 1000 ms); the failure is a WARN line naming the request's id, which the reply's
    X-Request-Id header carries back."""
    with Server(extra=["--udf-block-timeout-ms", "100", "--udf-tier", "interp",
                       "--udf-fuel", "1000000000000",  # the deadline, not the fuel, must end it
                       "--search-slow-ms", "50"]) as s:
        index_one(s)
        deploy_loop(s)
        r = s.http("POST", "/p/_search", LOOP_Q)
        eq(r.status, 400, "the loop fails: %r" % r)
        check("deadline of 100 ms" in r.text, "the lowered deadline ended it", r)
        rid = r.headers.get("X-Request-Id")
        check(rid and rid.startswith("node-1-"), "the error names its request", r.headers)
        lines = [l for l in s.logtext().splitlines() if "[request %s]" % rid in l]
        check(any(" WARN: " in l and "deadline of 100 ms" in l for l in lines),
              "the node's log names the failed request %s" % rid, s.logtext()[-3000:])
        check(any(re.search(r" WARN: \[request [^]]+\] slow search: \d+ ms \(threshold 50 ms\) "
                            r"on \[p\], UDFs infinite_loop v1 \(failed\)", l) for l in lines),
              "the slow log names the request and its UDF", lines)
        # the client's own id (Elasticsearch's X-Opaque-Id) is used and echoed instead
        r = s.http("POST", "/p/_search", LOOP_Q, headers={"X-Opaque-Id": "job-42 (nightly)"})
        eq(r.status, 400, "again")
        eq(r.headers.get("X-Opaque-Id"), "job-42(nightly)", "X-Opaque-Id echoed (printable, "
           "no spaces)")
        check("[request job-42(nightly)] " in s.logtext(), "the log line carries the client's id",
              s.logtext()[-3000:])
        r2 = s.http("GET", "/p/_count")
        eq(r2.status, 200, "a success")
        check("X-Request-Id" not in r2.headers, "a success without an opaque id carries no id",
              r2.headers)
        ids = set()
        for _ in range(3):
            ids.add(s.http("GET", "/nope/_doc/1").headers.get("X-Request-Id"))
        eq(len(ids), 3, "ids are distinct: %r" % ids)


def t_500_names_its_request():
    """An ERROR line (a damaged stored document: a 500) starts with the request's id."""
    with Server() as s:
        eq(s.http("PUT", "/fz/_doc/2?refresh=true", {"title": "damaged"}).status, 201, "indexed")
        s.stop()
        dbs = [os.path.join(d, "docs.db") for d, _, files in os.walk(s.data) if "docs.db" in files]
        db = sqlite3.connect(dbs[0])
        db.execute("UPDATE docs SET source = '{\"title\": \"dam' WHERE id = '2'")
        db.commit()
        db.close()
        s.start()
        r = s.http("POST", "/fz/_search", {"query": {"match_all": {}}})
        eq(r.status, 500, "a corrupt _source: %r" % r)
        rid = r.headers.get("X-Request-Id")
        check(rid, "the 500 carries X-Request-Id", r.headers)
        check(re.search(r" ERROR: \[request %s\] POST /fz/_search: CORRUPT" % re.escape(rid),
                        s.logtext()), "the ERROR line names request %s" % rid, s.logtext()[-3000:])


def t_memory_cap_flag():
    """A UDF that grows its memory by 2 MiB: fine under the default cap (16 MiB); a trap under
    --udf-memory 1m. --udf-call-depth and --udf-fuel are accepted the same way."""
    wasm = wat2wasm(GROW_WAT)
    if wasm is None:
        return skip("wat2wasm missing")
    man = json.dumps({"name": "grow", "export": "grow", "kind": "score", "returns": "i32",
                      "params": [{"name": "x", "type": "i32", "default": 1}]}).encode()
    q = {"query": {"function_score": {"query": {"match_all": {}}, "script_score": {
        "script": {"source": "grow"}}}}}
    with Server() as s:
        index_one(s)
        deploy(s, "grow", man, wasm)
        r = s.http("POST", "/p/_search", q)
        eq(r.status, 200, "2 MiB fits the default cap: %r" % r)
    with Server(extra=["--udf-memory", "1m", "--udf-call-depth", "500",
                       "--udf-fuel", "5000000"]) as s:
        index_one(s)
        deploy(s, "grow", man, wasm)
        r = s.http("POST", "/p/_search", q)
        check(r.status == 400 and "grow" in r.text and "unreachable" in r.text,
              "the same UDF traps under a 1 MiB cap", r)


def t_call_depth_and_fuel_flags():
    """Recursion 2,000 deep and 50,000 loop turns per document pass under the defaults (10,000
    frames, 10,000,000 units); --udf-call-depth 1000 and --udf-fuel 10000 make the same
    searches fail with the engine's errors."""
    wasm = wat2wasm(DEEP_WAT)
    if wasm is None:
        return skip("wat2wasm missing")

    def q(name, n):
        return {"query": {"function_score": {"query": {"match_all": {}}, "script_score": {
            "script": {"source": name, "params": {"n": n}}}}}}

    def setup(s):
        index_one(s)
        for name in ("deep", "turns"):
            man = json.dumps({"name": name, "export": name, "kind": "score", "returns": "i32",
                              "params": [{"name": "n", "type": "i32"}]}).encode()
            deploy(s, name, man, wasm)
    with Server() as s:
        setup(s)
        eq(s.http("POST", "/p/_search", q("deep", 2000)).status, 200, "2,000 frames by default")
        eq(s.http("POST", "/p/_search", q("turns", 50000)).status, 200, "50,000 turns by default")
    with Server(extra=["--udf-call-depth", "1000", "--udf-fuel", "10000"]) as s:
        setup(s)
        r = s.http("POST", "/p/_search", q("deep", 2000))
        check(r.status == 400 and "call stack exhausted" in r.text, "deeper than 1,000 frames", r)
        eq(s.http("POST", "/p/_search", q("deep", 500)).status, 200, "500 frames still fit")
        r = s.http("POST", "/p/_search", q("turns", 50000))
        check(r.status == 400 and "exceeded its fuel budget" in r.text, "past 10,000 units", r)


def t_result_limit_flags():
    """--script-value-max 100 and --script-response-max 1k: a value of 101 bytes is refused
    naming the limit; ten values of 200 bytes with a value limit of 1k trip the breaker."""
    wasm = wat2wasm(BIG_WAT)
    if wasm is None:
        return skip("wat2wasm missing")
    man = json.dumps({"name": "blob", "export": "blob", "kind": "transform", "returns": "string",
                      "params": [{"name": "len", "type": "f64"}]}).encode()

    def search(s, length, size):
        return s.http("POST", "/b/_search", {"size": size, "_source": False, "script_fields": {
            "x": {"script": {"source": "blob", "params": {"len": length}}}}})
    with Server(extra=["--script-value-max", "100", "--script-response-max", "1k"]) as s:
        lines = []
        for i in range(20):
            lines += [{"index": {"_index": "b", "_id": "d%d" % i}}, {"n": i}]
        eq(s.bulk(lines).status, 200, "bulk")
        deploy(s, "blob", man, wasm)
        r = search(s, 100, 5)
        eq(r.status, 200, "100 bytes fit: %r" % r)
        r = search(s, 101, 1)
        check(r.status == 400 and "larger than the limit of 100 bytes per value" in r.text,
              "101 bytes are refused", r)
    with Server(extra=["--script-value-max", "1k", "--script-response-max", "1k"]) as s:
        lines = []
        for i in range(20):
            lines += [{"index": {"_index": "b", "_id": "d%d" % i}}, {"n": i}]
        eq(s.bulk(lines).status, 200, "bulk")
        deploy(s, "blob", man, wasm)
        eq(search(s, 200, 5).status, 200, "5 x 200 bytes fit in 1 KiB")
        r = search(s, 200, 10)
        check(r.status == 429 and r.json["error"]["type"] == "circuit_breaking_exception"
              and "limit of 1024 bytes" in r.text, "10 x 200 bytes trip the breaker", r)


def t_bad_flag_values_are_refused():
    exe = os.path.join(BUILD, "quidditch")
    for flag, value, says in [("--udf-memory", "3x", "--udf-memory '3x'"),
                              ("--udf-memory", "1k", "from 65536"),
                              ("--udf-fuel", "-1", "--udf-fuel '-1'"),
                              ("--udf-block-timeout-ms", "0", "milliseconds per block"),
                              ("--udf-call-depth", "1e3", "wasm frames"),
                              ("--script-value-max", "", "bytes per script_fields value"),
                              ("--udf-max-module", "200m", "bytes per module")]:
        p = subprocess.run([exe, "serve", flag, value], capture_output=True, text=True, timeout=30)
        check(p.returncode == 2 and says in p.stderr, "%s %r is refused" % (flag, value),
              p.returncode, p.stderr)
    p = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    check("--udf-block-timeout-ms" in p.stdout and "--script-response-max" in p.stdout,
          "--help lists the flags", p.stdout)


if __name__ == "__main__":
    run_tests([
        ("block_deadline_flag_and_request_ids", t_block_deadline_flag),
        ("a_500_names_its_request", t_500_names_its_request),
        ("memory_cap_flag", t_memory_cap_flag),
        ("call_depth_and_fuel_flags", t_call_depth_and_fuel_flags),
        ("result_limit_flags", t_result_limit_flags),
        ("bad_flag_values_are_refused", t_bad_flag_values_are_refused),
    ])
