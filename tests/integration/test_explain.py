"""test_explain.py: GET /{index}/_explain/{id} and explain: true in a search: the BM25 tree in
Elasticsearch's shape, its values checked against BM25 computed here from the documents (Lucene's
formula and SmallFloat length norms) and against the scores _search gives."""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402

TITLES = ["fast red laptop", "red bag", "laptop laptop stand for a big desk", "blue phone",
          "red red red car with a very long title that goes on and on", "laptop"]


def int_to_byte4(i):  # Lucene SmallFloat.intToByte4
    if i < 24:
        return i
    i -= 24
    bits = i.bit_length()
    if bits < 4:
        enc = i
    else:
        shift = bits - 4
        enc = ((i >> shift) & 7) | ((shift + 1) << 3)
    return 24 + enc


def byte4_to_int(b):
    if b < 24:
        return b
    b -= 24
    bits, shift = b & 7, (b >> 3) - 1
    return 24 + (bits if shift == -1 else (bits | 8) << shift)


def bm25(term, doc):
    toks = [t.split() for t in TITLES]
    n = sum(1 for t in toks if term in t)
    big_n = len(toks)
    avgdl = sum(len(t) for t in toks) / big_n
    idf = math.log(1 + (big_n - n + 0.5) / (n + 0.5))
    freq = toks[doc].count(term)
    dl = byte4_to_int(int_to_byte4(len(toks[doc])))
    return idf * freq / (freq + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl)) if freq else 0.0


def close(a, b, what):
    check(abs(a - b) <= 1e-5 * max(1.0, abs(b)), what, (a, b))


def t_explain():
    with Server() as s:
        eq(s.http("PUT", "/e", {"mappings": {"properties": {"title": {"type": "text"},
                                                            "tag": {"type": "keyword"}}}}).status,
           200, "create")
        lines = []
        for i, t in enumerate(TITLES):
            lines += [{"index": {"_id": str(i)}}, {"title": t, "tag": "t%d" % (i % 2)}]
        s.bulk(lines, "/e/_bulk?refresh=true")
        r = s.http("GET", "/e/_explain/0", {"query": {"match": {"title": "laptop"}}})
        eq((r.status, r.json["matched"]), (200, True), "explain: %r" % r)
        e = r.json["explanation"]
        close(e["value"], bm25("laptop", 0), "value equals BM25 computed here")
        check(e["description"].startswith("weight(title:laptop in "), "description", e)
        sc = e["details"][0]
        eq([d["description"].split(",")[0] for d in sc["details"]], ["boost", "idf", "tf"], "shape")
        idf = sc["details"][1]
        eq([d["value"] for d in idf["details"]], [3, 6], "n and N")
        # a two-term match sums its terms; it equals _search's score for every document
        q = {"match": {"title": "red laptop"}}
        hits = s.http("POST", "/e/_search", {"query": q, "size": 10}).json["hits"]["hits"]
        for h in hits:
            e = s.http("GET", "/e/_explain/" + h["_id"], {"query": q}).json["explanation"]
            close(e["value"], h["_score"], "explain = _search score for " + h["_id"])
            close(e["value"], bm25("red", int(h["_id"])) + bm25("laptop", int(h["_id"])),
                  "explain = BM25 here for " + h["_id"])
        r = s.http("GET", "/e/_explain/3", {"query": q})
        eq((r.json["matched"], r.json["explanation"]["value"]), (False, 0.0), "no match")
        # bool with a filter, and explain: true in a search
        q = {"bool": {"must": [{"match": {"title": "red"}}], "filter": [{"term": {"tag": "t0"}}],
                      "must_not": [{"term": {"title": "car"}}]}}
        r = s.http("POST", "/e/_search", {"query": q, "explain": True})
        eq(r.status, 200, "explain: true: %r" % r)
        for h in r.json["hits"]["hits"]:
            close(h["_explanation"]["value"], h["_score"], "_explanation of " + h["_id"])
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]), ["0"], "bool matched")
        r = s.http("GET", "/e/_explain/0", {"query": {"range": {"n": {"gte": 1}}}})
        eq(r.status, 400, "range is not explained")
        check("range" in r.json["error"]["reason"], "names it", r.json)
        r = s.http("POST", "/e/_search", {"query": {"fuzzy": {"title": "laptp"}}, "explain": True})
        eq(r.status, 400, "an unexplained query in explain: true")
        eq(s.http("GET", "/e/_explain/nope", {"query": {"match_all": {}}}).json["matched"], False,
           "missing document")


if __name__ == "__main__":
    run_tests([("explain_trees_add_up_to_bm25", t_explain)])
