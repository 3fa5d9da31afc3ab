"""test_robustness.py: hostile input against a real (ASan in the test build) quidditch: random
and mutated bodies on every body-taking route, malformed multipart deploys, odd paths. The node
must answer each request with a status (4xx expected), keep serving, and stop cleanly with no
sanitizer report (checked by Server.__exit__)."""
import json
import os
import random
import socket
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, multipart, run_tests, skip, wat2wasm  # noqa: E402

SEED_BODIES = [
    b'{"query": {"match": {"title": "laptop"}}, "size": 3}',
    b'{"query": {"function_score": {"query": {"match_all": {}}, "script_score": {"script": '
    b'{"source": "_score * 2"}}}}}',
    b'{"index": {"_id": "1"}}\n{"title": "a"}\n{"delete": {"_id": "2"}}\n',
    b'{"mappings": {"properties": {"title": {"type": "text"}}}}',
    b'{"args": {"p0": 1}}',
    b'{"to": "v1"}',
    b'{"doc": {"x": 1}, "doc_as_upsert": true}',
    b'{"index": "fz"}\n{"query": {"match_all": {}}}\n{}\n{"size": 1}\n',
    b'{"docs": [{"_index": "fz", "_id": "1"}, {"_id": 2}], "ids": ["1"]}',
]
ROUTES = [("POST", "/fz/_search"), ("POST", "/fz/_count"), ("POST", "/_bulk"),
          ("POST", "/fz/_bulk"), ("PUT", "/fz2"), ("PUT", "/fz/_doc/1"), ("POST", "/fz/_doc"),
          ("POST", "/fz/_update/1"), ("PUT", "/fz/_mapping"), ("POST", "/_udf/x/_test"),
          ("POST", "/_udf/x/_rollback"), ("PUT", "/_udf/fzudf"), ("POST", "/_search"),
          ("POST", "/_msearch"), ("POST", "/fz/_msearch"), ("POST", "/_mget"), ("POST", "/fz/_mget"),
          ("POST", "/fz/_delete_by_query")]


def mutate(rng, b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 6)):
        op = rng.randint(0, 3)
        i = rng.randint(0, max(0, len(b) - 1))
        if op == 0 and b:
            b[i] = rng.randint(0, 255)
        elif op == 1:
            b[i:i] = bytes([rng.choice(b'{}[]":,\n\\\x00')])
        elif op == 2 and b:
            del b[i:i + rng.randint(1, 8)]
        else:
            b[i:i] = b[:rng.randint(0, len(b))]
    return bytes(b)


def t_mutated_bodies():
    rng = random.Random(int(os.environ.get("QD_SEED", "1234")))
    with Server() as s:
        s.http("PUT", "/fz", {"mappings": {"properties": {"title": {"type": "text"}}}})
        for i in range(1500):
            method, path = rng.choice(ROUTES)
            body = mutate(rng, rng.choice(SEED_BODIES)) if rng.random() < 0.9 else \
                bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 200)))
            r = s.http(method, path, body, "application/json")
            check(200 <= r.status < 500, "request %d %s %s %r" % (i, method, path, body[:80]), r)
            check(r.json is not None, "JSON answer to %s %s" % (method, path), r)
        eq(s.http("GET", "/").status, 200, "still serving")


def t_malformed_multipart_deploys():
    rng = random.Random(99)
    good, ctype = multipart([("manifest", None, "application/json", b'{"kind":"score"}'),
                             ("wasm", "m.wasm", "application/wasm",
                              b"\x00asm\x01\x00\x00\x00")])
    with Server() as s:
        for i in range(150):
            body = mutate(rng, good)
            ct = ctype if rng.random() < 0.8 else rng.choice(
                ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; "
                 "boundary=\"unterminated", "multipart/form-data; boundary=" + "b" * 300])
            r = s.http("PUT", "/_udf/mp", body, ct)
            check(r.status in (400, 404, 413), "deploy %d answered %d" % (i, r.status), r)
        eq(s.http("GET", "/_udf/mp").status, 404, "nothing stored")


def t_odd_requests():
    with Server() as s:
        for method, path in [("GET", "/%00"), ("GET", "/" + "a/" * 50), ("GET", "/%zz/_search"),
                             ("DELETE", "/_all"), ("GET", "/_udf/" + "x" * 300),
                             ("POST", "/_udf/..%2F..%2Fetc/_test"), ("OPTIONS", "/"),
                             ("GET", "/fz/_doc/" + "%2F" * 600)]:
            r = s.http(method, path)
            check(400 <= r.status < 500, "%s %s -> %d" % (method, path[:40], r.status), r)
        # a raw request with a broken request line, then one cut off mid-body
        for raw in (b"GARBAGE\r\n\r\n", b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Length: 100"
                    b"\r\n\r\n{\"index\""):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=1)
            c.sendall(raw)
            c.shutdown(socket.SHUT_WR)
            try:
                c.recv(4096)
            except OSError:
                pass
            c.close()
        eq(s.http("GET", "/").status, 200, "still serving")
        r = s.http("POST", "/_bulk", json.dumps({"index": {"_index": "ok", "_id": "1"}}) + "\n" +
                   json.dumps({"a": 1}) + "\n", "application/x-ndjson")
        eq((r.status, r.json["errors"]), (200, False), "bulk after hostile input")


def t_malformed_bodies():
    """The client's fault: 400 with Elasticsearch's type, from the one table (errors.c)."""
    with Server() as s:
        s.http("PUT", "/fz", {"mappings": {"properties": {"title": {"type": "text"}}}})
        for method, path, body, want in [
                ("POST", "/fz/_search", '{"query": {', "x_content_parse_exception"),
                ("POST", "/fz/_search", "[1, 2]", "x_content_parse_exception"),
                ("POST", "/fz/_count", "{\"query\": nope}", "x_content_parse_exception"),
                ("POST", "/fz/_search", '{"query": {"nope": {}}}', "parsing_exception"),
                ("PUT", "/fz/_doc/1", '{"title": ', "x_content_parse_exception"),
                ("POST", "/_bulk", '{"index": {"_index": "fz"\n{"title": "a"}\n',
                 "x_content_parse_exception")]:
            r = s.http(method, path, body, "application/json")
            eq((r.status, r.json["error"]["type"], r.json["status"]), (400, want, 400),
               "%s %s %r" % (method, path, body))
        body, ctype = multipart([("manifest", None, "application/json", b'{"kind": '),
                                 ("wasm", "m.wasm", "application/wasm", b"\x00asm\x01\x00\x00\x00")])
        r = s.http("PUT", "/_udf/mp", body, ctype)
        eq((r.status, r.json["error"]["type"]), (400, "x_content_parse_exception"), "manifest part")
        check(" ERROR: " not in s.logtext(), "a client's mistake is not logged as ERROR",
              s.logtext()[-2000:])


def t_corrupt_store():
    """Ours, not the client's: a damaged stored document answers 500 and logs ERROR, and the
    node keeps serving."""
    with Server() as s:
        s.http("PUT", "/fz", {"mappings": {"properties": {"title": {"type": "text"}}}})
        eq(s.http("PUT", "/fz/_doc/1?refresh=true", {"title": "intact"}).status, 201, "indexed")
        eq(s.http("PUT", "/fz/_doc/2?refresh=true", {"title": "damaged"}).status, 201, "indexed")
        s.stop()
        dbs = [os.path.join(d, "docs.db") for d, _, files in os.walk(s.data) if "docs.db" in files]
        eq(len(dbs), 1, "one index store under %s" % s.data)
        db = sqlite3.connect(dbs[0])
        eq(db.execute("UPDATE docs SET source = '{\"title\": \"dam' WHERE id = '2'").rowcount, 1,
           "damaged one stored document")
        db.commit()
        db.close()
        s.start()
        r = s.http("POST", "/fz/_search", {"query": {"match": {"title": "damaged"}}})
        eq((r.status, r.json["error"]["type"], r.json["status"]), (500, "exception", 500),
           "a corrupt stored _source: %r" % r)
        check("stored _source is not JSON" in r.json["error"]["reason"], "reason names it", r)
        log = s.logtext()
        check(" ERROR: " in log and "CORRUPT" in log, "logged at ERROR", log[-2000:])
        r = s.http("POST", "/fz/_search", {"query": {"match": {"title": "intact"}}})
        eq((r.status, r.json["hits"]["total"]["value"]), (200, 1), "the rest still answers")


def t_bad_names_store_nothing():
    """issue 13 #5: a path that decodes to NUL or to invalid UTF-8 is a 400 before any handler
    runs, and nothing is stored: no index, no UDF, searches over _all still work, also after a
    restart."""
    with Server() as s:
        for method, path in [("PUT", "/%FF%FE"), ("PUT", "/a%00b"), ("PUT", "/_udf/%FF"),
                             ("PUT", "/ok%C0%AF"), ("PUT", "/x/_doc/%ED%A0%80")]:
            r = s.http(method, path, b'{}' if "_doc" in path else None)
            eq(r.status, 400, "%s %r" % (method, path))
            check(r.json is not None and "error" in r.json, "%r: an Elasticsearch error" % path, r)
        eq(s.http("HEAD", "/a").status, 404, "PUT /a%00b created nothing")
        eq(s.http("GET", "/_cat/indices?format=json").status in (200, 400), True, "cat answers")
        r = s.http("POST", "/_all/_search", b'{"query": {"match_all": {}}}')
        check(r.status == 200, "_all/_search after bad names", r)
        r = s.http("GET", "/_udf")
        check(r.status == 200, "GET /_udf", r)
        check(not r.json or r.json == {"udfs": []} or len(r.json) == 0, "no UDF was stored", r)
        s.restart()
        eq(s.http("POST", "/_all/_search", b'{"query": {"match_all": {}}}').status, 200,
           "_all/_search after a restart")


def raw_status(port, raw, timeout=5):
    """Send RAW on a new connection; the status of the first response line, or None when the
    server answered nothing within TIMEOUT seconds."""
    c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        c.sendall(raw)
        got = b""
        while b"\r\n" not in got:
            try:
                part = c.recv(4096)
            except socket.timeout:
                return None
            if not part:
                break
            got += part
        line = got.split(b"\r\n", 1)[0].split()
        return int(line[1]) if len(line) > 1 and line[1].isdigit() else None
    finally:
        c.close()


def t_framing_edges():
    """issue 13 #10: conflicting Content-Length headers and a Transfer-Encoding other than
    chunked are refused at once (they were accepted, or got no answer)."""
    with Server() as s:
        st = raw_status(s.port, b"POST /fz/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: 7\r\nContent-Length: 9\r\n\r\n"
                        b"{\"a\":1}")
        eq(st, 400, "two different Content-Length headers")
        st = raw_status(s.port, b"POST /fz/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nTransfer-Encoding: gzip\r\n\r\nxxxx")
        eq(st, 501, "Transfer-Encoding: gzip")
        eq(s.http("HEAD", "/fz").status, 404, "nothing was stored")
        st = raw_status(s.port, b"PUT /fz/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: "
                        b"application/json\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n"
                        b"{\"a\":1}")
        check(st in (200, 201), "two equal Content-Length headers are fine: %r" % st)


def t_numbers_come_back_as_written():
    """issue 13 #10: 1.36 came back as 1.3600000000000001 (17 digits); numbers in _source, in
    search hits and after a partial _update read back as the client wrote them."""
    doc = b'{"p":1.36,"q":0.1,"r":100.0,"s":-2.5e-7,"i":42,"e":6.02e+23}'
    with Server() as s:
        r = s.http("PUT", "/n/_doc/1?refresh=true", doc, "application/json")
        check(r.status == 201, "put", r)
        r = s.http("GET", "/n/_doc/1")
        check(b'"_source":' + doc in r.text.encode(), "GET returns the numbers as written", r)
        r = s.http("POST", "/n/_search", {"query": {"match_all": {}}})
        check(b'"_source":' + doc in r.text.encode(), "search hits too", r)
        r = s.http("POST", "/n/_update/1?refresh=true", {"doc": {"x": 0.3}})
        eq(r.status, 200, "update")
        r = s.http("GET", "/n/_doc/1")
        check('"p":1.36,' in r.text and '"x":0.3}' in r.text, "after an update", r)


BIG_WAT = """(module (memory (export "memory") 48)
  (func (export "qd_alloc") (param i32) (result i32) i32.const 8)
  (func (export "blob") (param f64) (result i64)
    ;; (ptr 0 << 32) | len, len = the parameter (bytes of zeros)
    local.get 0 i64.trunc_f64_u))"""


def t_script_field_results_are_bounded():
    """issue 13 #4: a transform returning megabytes per hit drove the node to 10 GB. One value
    over 1 MiB is a script error naming the document; a response whose string values pass
    64 MiB trips the request breaker (429 circuit_breaking_exception); the node keeps serving."""
    wasm = wat2wasm(BIG_WAT)
    if wasm is None:
        return skip("wat2wasm missing")
    with Server() as s:
        lines = []
        for i in range(100):
            lines += [{"index": {"_index": "b", "_id": "d%d" % i}}, {"n": i}]
        eq(s.bulk(lines).status, 200, "bulk")
        man = {"name": "blob", "export": "blob", "kind": "transform", "returns": "string",
               "params": [{"name": "len", "type": "f64"}]}
        body, ctype = multipart([("manifest", None, "application/json", json.dumps(man).encode()),
                                 ("wasm", "blob.wasm", "application/wasm", wasm)])
        r = s.http("PUT", "/_udf/blob", body, ctype)
        check(r.status == 200, "deploy", r)

        def search(length, size):
            return s.http("POST", "/b/_search", {"size": size, "_source": False, "script_fields": {
                "x": {"script": {"source": "blob", "params": {"len": length}}}}})
        r = search(1000, 3)
        check(r.status == 200 and len(r.json["hits"]["hits"][0]["fields"]["x"][0]) == 1000,
              "a small value is returned", r)
        r = search(2 << 20, 3)
        check(r.status == 400 and "larger than the limit of 1048576 bytes per value" in r.text
              and "for document [d" in r.text, "a 2 MiB value is refused", r)
        r = search(1000000, 100)
        check(r.status == 429 and r.json["error"]["type"] == "circuit_breaking_exception",
              "100 values of 1 MB trip the request breaker", r)
        eq(s.http("GET", "/b/_count").status, 200, "still serving")


if __name__ == "__main__":
    run_tests([
        ("mutated_bodies_on_every_route_get_answers", t_mutated_bodies),
        ("malformed_multipart_deploys_store_nothing", t_malformed_multipart_deploys),
        ("odd_paths_and_broken_connections", t_odd_requests),
        ("malformed_bodies_answer_400_with_the_elasticsearch_type", t_malformed_bodies),
        ("a_corrupt_store_answers_500_and_logs_error", t_corrupt_store),
        ("bad_names_are_400_and_store_nothing", t_bad_names_store_nothing),
        ("conflicting_lengths_and_unknown_codings_are_refused", t_framing_edges),
        ("numbers_come_back_as_written", t_numbers_come_back_as_written),
        ("script_field_results_are_bounded", t_script_field_results_are_bounded),
    ])
