"""test_phrase_highlight.py: phrase queries and highlighting (issue 12 §2) against a real
quidditch, checked against a reference written here in Python from Lucene's and
Elasticsearch's definitions (not from the engine): BM25 with SmallFloat norms and float
rounding, the exact and sloppy phrase matchers (PhraseQueue order, match length, 1/(1+d)),
match_phrase_prefix expansions, multi_match phrase / cross_fields (BlendedTermQuery's document
frequency blending) / best_fields / most_fields, and the highlighter's fragments."""
import heapq
import math
import os
import random
import re
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, close, eq, run_tests  # noqa: E402

VOCAB = ["red", "blue", "green", "fox", "dog", "box", "bold", "boat"]


def make_corpus():
    rnd = random.Random(12)
    docs = []
    for i in range(60):
        title = " ".join(rnd.choice(VOCAB) for _ in range(rnd.randint(2, 7)))
        words = []
        for _ in range(rnd.randint(8, 30)):
            words.append(rnd.choice(VOCAB))
            if rnd.random() < 0.15:
                words[-1] += "."
        body = " ".join(words)
        docs.append(("d%02d" % i, {"title": title, "body": body}))
    return docs


DOCS = make_corpus()

# ---- reference: analysis, BM25 (Lucene 8) ---------------------------------------------------


def toks(text):
    return [(m.group(0).lower(), i, m.start(), m.end())
            for i, m in enumerate(re.finditer(r"[A-Za-z0-9]+", text))]


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def long_to_int4(i):
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 7) | ((shift + 1) << 3)


def int4_to_long(i):
    bits, shift = i & 7, (i >> 3) - 1
    return bits if shift == -1 else (bits | 8) << shift


def norm_len(n):  # intToByte4 then byte4ToInt: the length Lucene scores with
    b = n if n < 24 else 24 + long_to_int4(n - 24)
    return b if b < 24 else 24 + int4_to_long(b - 24)


def idf(n, df):
    return f32(math.log(1 + (n - df + 0.5) / (df + 0.5)))


class Field:
    def __init__(self, name):
        self.name = name
        self.tokens = {i: toks(d[name]) for i, d in DOCS}
        self.doc_count = sum(1 for t in self.tokens.values() if t)
        self.sttf = sum(len(t) for t in self.tokens.values())
        self.avgdl = f32(self.sttf / self.doc_count)

    def positions(self, doc, term):
        return [p for (t, p, _, _) in self.tokens[doc] if t == term]

    def df(self, term):
        return sum(1 for d in self.tokens if self.positions(d, term))

    def terms(self):
        return sorted({t for ts in self.tokens.values() for (t, _, _, _) in ts})

    def score(self, doc, weight, freq):
        k1, b = f32(1.2), 0.75
        dl = f32(norm_len(len(self.tokens[doc])))
        cache = f32(1 / f32(k1 * f32(f32(1 - b) + f32(f32(b * dl) / self.avgdl))))
        return f32(weight - f32(weight / f32(1 + f32(freq * cache))))


TITLE, BODY = None, None


def fields():
    global TITLE, BODY
    if TITLE is None:
        TITLE, BODY = Field("title"), Field("body")
    return TITLE, BODY

# ---- reference: phrase matchers ------------------------------------------------------------


def exact_freq(pls, offs):
    n = 0
    for p0 in pls[0]:
        base = p0 - offs[0]
        if all(base + o in set(pl) for pl, o in zip(pls[1:], offs[1:])):
            n += 1
    return n


def sloppy_freq(pls, offs, slop):
    """Lucene's SloppyPhraseMatcher (no repeated terms), with a heap as its PhraseQueue"""
    pps = [{"p": pl, "i": 0, "pos": pl[0] - o, "off": o, "ord": k} for k, (pl, o) in enumerate(zip(pls, offs))]
    st = {"end": max(pp["pos"] for pp in pps), "positioned": True}
    heap = [(pp["pos"], pp["off"], pp["ord"]) for pp in pps]
    heapq.heapify(heap)

    def adv(pp):
        pp["i"] += 1
        if pp["i"] >= len(pp["p"]):
            return False
        pp["pos"] = pp["p"][pp["i"]] - pp["off"]
        st["end"] = max(st["end"], pp["pos"])
        return True

    def pop():
        return pps[heapq.heappop(heap)[2]]

    def push(pp):
        heapq.heappush(heap, (pp["pos"], pp["off"], pp["ord"]))

    def next_match():
        if not st["positioned"]:
            return None
        while heap:
            pp = pop()
            ml = st["end"] - pp["pos"]
            nxt = heap[0][0]
            while adv(pp):
                if pp["pos"] > nxt:
                    push(pp)
                    if ml <= slop:
                        return ml
                    pp = pop()
                    nxt = heap[0][0]
                    ml = st["end"] - pp["pos"]
                else:
                    ml = min(ml, st["end"] - pp["pos"])
            st["positioned"] = False
            return ml if ml <= slop else None
        st["positioned"] = False
        return None

    freq = f32(0)
    while True:
        ml = next_match()
        if ml is None:
            return freq
        freq = f32(freq + f32(1 / f32(1 + ml)))


def phrase_scores(f, words, slop, boost=1.0, prefix_max=None):
    """{doc: score} of match_phrase / match_phrase_prefix (PREFIX_MAX expansions)"""
    slots = [[w] for w in words]
    if prefix_max is not None:
        slots[-1] = [t for t in f.terms() if t.startswith(words[-1])][:prefix_max]
        if not slots[-1]:
            return {}
    idf_sum = 0.0
    for s in slots:
        for t in s:
            idf_sum += idf(f.doc_count, f.df(t))
    weight = f32(boost * f32(idf_sum))
    out = {}
    for d in f.tokens:
        pls = [sorted(p for t in s for p in f.positions(d, t)) for s in slots]
        if not all(pls):
            continue
        offs = list(range(len(words)))
        freq = exact_freq(pls, offs) if slop == 0 else sloppy_freq(pls, offs, slop)
        if freq > 0:
            out[d] = f.score(d, weight, freq)
    return out


def term_scores(f, term, boost=1.0, df=None):
    w = f32(boost * idf(f.doc_count, f.df(term) if df is None else df))
    return {d: f.score(d, w, len(f.positions(d, term))) for d in f.tokens if f.positions(d, term)}


def sum_scores(parts):
    out = {}
    for p in parts:
        for d, s in p.items():
            out[d] = out.get(d, 0.0) + s
    return {d: f32(s) for d, s in out.items()}


def max_scores(parts):
    out = {}
    for p in parts:
        for d, s in p.items():
            out[d] = max(out.get(d, 0.0), s)
    return out


def cross_fields(fs_boosts, text, op_and=False):
    terms = [t for (t, _, _, _) in toks(text)]
    per_term = []
    for t in terms:
        dfs = [f.df(t) for f, _ in fs_boosts]
        maxdf, maxdoc = max(dfs), len(DOCS)
        sttf = [f.sttf for (f, _), df in zip(fs_boosts, dfs) if df > 0]
        if sttf and maxdoc > min(sttf):
            maxdoc = min(sttf)
        adj = list(dfs)
        if len(dfs) > 1 and maxdf:
            order = sorted(range(len(dfs)), key=lambda i: -dfs[i])
            prev, actual = dfs[order[0]], min(maxdoc, maxdf)
            for i in order:
                if dfs[i] == 0:
                    break
                if prev > dfs[i]:
                    actual += 1
                adj[i] = min(maxdoc, actual)
                prev = dfs[i]
        per_term.append(max_scores([term_scores(f, t, b, adj[i]) for i, (f, b) in enumerate(fs_boosts)]))
    if op_and:
        common = set.intersection(*[set(p) for p in per_term])
        per_term = [{d: s for d, s in p.items() if d in common} for p in per_term]
    return sum_scores(per_term)

# ---- the checks ------------------------------------------------------------------------------


def search(s, query, **extra):
    body = {"query": query, "size": 100, "_source": False}
    body.update(extra)
    r = s.http("POST", "/p/_search", body)
    eq(r.status, 200, "search %r: %r" % (query, r))
    return r.json["hits"]["hits"]


def same(s, query, want, what):
    hits = search(s, query)
    got = {h["_id"]: h["_score"] for h in hits}
    eq(sorted(got), sorted(want), "%s: matching docs" % what)
    for d in want:
        close(got[d], want[d], 1e-6, "%s: score of %s" % (what, d))
    scores = [h["_score"] for h in hits]
    check(scores == sorted(scores, reverse=True), "%s: best first" % what)
    return len(want)


SRV = None


def server():
    global SRV
    if SRV is None:
        SRV = Server()
        SRV.start()
        eq(SRV.http("PUT", "/p", {"mappings": {"properties": {
            "title": {"type": "text"}, "body": {"type": "text"}, "tag": {"type": "keyword"}}}}).status, 200, "create")
        lines = []
        for i, d in DOCS:
            lines += [{"index": {"_index": "p", "_id": i}}, d]
        r = SRV.bulk(lines)
        check(r.status == 200 and not r.json["errors"], "bulk", r)
    return SRV


def t_phrase_with_slop():
    s = server()
    title, body = fields()
    for words in (["red", "fox"], ["fox", "red"], ["red", "fox", "dog"], ["blue", "green", "box"]):
        counts = []
        for slop in (0, 1, 2, 3, 5):
            q = {"match_phrase": {"title": {"query": " ".join(words), "slop": slop}}}
            counts.append(same(s, q, phrase_scores(title, words, slop), "title %r slop %d" % (words, slop)))
        check(counts[-1] > counts[0] or counts[0] > 0, "%r: the corpus has matches" % words, counts)
        check(counts == sorted(counts), "%r: a larger slop matches more" % words, counts)
    for words, slop in ((["dog", "boat"], 0), (["dog", "boat"], 2), (["bold", "red", "blue"], 4)):
        same(s, {"match_phrase": {"body": {"query": " ".join(words), "slop": slop, "boost": 2.5}}},
             phrase_scores(body, words, slop, 2.5), "body %r slop %d boost" % (words, slop))
    # with a bar (track_total_hits 1, size 3) documents that cannot enter the top are skipped:
    # the top stays the reference's (ties: index order), the total becomes a lower bound
    order = {i: k for k, (i, _) in enumerate(DOCS)}
    for words, slop in ((["red", "fox"], 0), (["blue", "dog"], 3), (["green", "box", "red"], 2)):
        want = phrase_scores(body, words, slop)
        top = sorted(want, key=lambda d: (-want[d], order[d]))[:3]
        r = s.http("POST", "/p/_search", {"query": {"match_phrase": {"body": {"query": " ".join(words), "slop": slop}}},
                                          "size": 3, "track_total_hits": 1, "_source": False})
        eq([h["_id"] for h in r.json["hits"]["hits"]], top, "pruned top of %r slop %d" % (words, slop))
        check(len(want) > 3, "more matches than the top", want)
    # the shorthand, and one term is a term query
    same(s, {"match_phrase": {"title": "green fox"}}, phrase_scores(title, ["green", "fox"], 0), "shorthand")
    same(s, {"match_phrase": {"title": "boat"}}, term_scores(title, "boat"), "one term")
    # a transposition costs 2 (Lucene): "fox red" matches "red fox" from slop 2 on
    rev = phrase_scores(title, ["fox", "red"], 2)
    fwd_only = [d for d in phrase_scores(title, ["red", "fox"], 0) if d not in phrase_scores(title, ["fox", "red"], 1)]
    check(all(d in rev for d in fwd_only), "slop 2 takes the transposition")


def t_phrase_prefix():
    s = server()
    title, body = fields()
    for text, mx in (("red bo", 50), ("red bo", 2), ("green fox b", 1), ("dog bl", 50)):
        q = {"match_phrase_prefix": {"title": {"query": text, "max_expansions": mx}}}
        words = text.split()
        same(s, q, phrase_scores(title, words, 0, prefix_max=mx), "prefix %r max %d" % (text, mx))
    q = {"match_phrase_prefix": {"body": {"query": "fox bo", "slop": 2}}}
    same(s, q, phrase_scores(body, ["fox", "bo"], 2, prefix_max=50), "prefix with slop")
    # one term: the disjunction of its expansions' term queries
    want = sum_scores([term_scores(title, t) for t in ["boat", "bold", "box"]])
    same(s, {"match_phrase_prefix": {"title": "bo"}}, want, "one-term prefix")


def t_multi_match_types():
    s = server()
    title, body = fields()
    fb = [(title, 1.0), (body, 2.0)]
    q = {"multi_match": {"query": "red fox", "type": "phrase", "fields": ["title", "body^2"], "slop": 1}}
    same(s, q, max_scores([phrase_scores(f, ["red", "fox"], 1, b) for f, b in fb]), "multi_match phrase")
    q = {"multi_match": {"query": "green bo", "type": "phrase_prefix", "fields": ["title", "body^2"]}}
    same(s, q, max_scores([phrase_scores(f, ["green", "bo"], 0, b, prefix_max=50) for f, b in fb]),
         "multi_match phrase_prefix")
    for text, op in (("red fox", "or"), ("boat dog", "and"), ("blue", "or")):
        q = {"multi_match": {"query": text, "type": "cross_fields", "fields": ["title", "body^2"], "operator": op}}
        same(s, q, cross_fields(fb, text, op == "and"), "cross_fields %r %s" % (text, op))
    # best_fields and most_fields stay as they were
    def match(f, text, b):
        return sum_scores([term_scores(f, t, b) for (t, _, _, _) in toks(text)])
    q = {"multi_match": {"query": "red boat", "fields": ["title", "body^2"]}}
    same(s, q, max_scores([match(f, "red boat", b) for f, b in fb]), "best_fields")
    q = {"multi_match": {"query": "red boat", "fields": ["title", "body^2"], "type": "most_fields"}}
    same(s, q, sum_scores([match(f, "red boat", b) for f, b in fb]), "most_fields")


def t_repeated_terms():
    """a term twice in the phrase needs two occurrences (Lucene's repeat groups), checked by hand"""
    s = server()
    eq(s.http("PUT", "/rep", {"mappings": {"properties": {"t": {"type": "text"}}}}).status, 200, "create rep")
    texts = {"a": "red fox red", "b": "red fox", "c": "red red", "d": "fox red dog box red"}
    lines = []
    for i, t in texts.items():
        lines += [{"index": {"_index": "rep", "_id": i}}, {"t": t}]
    check(s.bulk(lines).status == 200, "bulk rep")
    for q, slop, want in (("red red", 0, ["c"]), ("red red", 1, ["a", "c"]), ("red red", 3, ["a", "c", "d"]),
                          ("red fox red", 0, ["a"]), ("red red fox", 2, ["a"])):
        r = s.http("POST", "/rep/_search", {"query": {"match_phrase": {"t": {"query": q, "slop": slop}}}})
        eq(sorted(h["_id"] for h in r.json["hits"]["hits"]), want, "%r slop %d" % (q, slop))


def t_refusals():
    s = server()
    for body, name in (({"query": {"match_phrase": {"title": {"query": "a b", "slops": 1}}}}, "slops"),
                       ({"query": {"match_phrase": {"title": {"query": "a b", "analyzer": "english"}}}}, "analyzer"),
                       ({"query": {"match_phrase_prefix": {"title": {"query": "a", "max_expansion": 1}}}}, "max_expansion"),
                       ({"query": {"match_phrase": {"title": {"query": "a b", "max_expansions": 3}}}}, "max_expansions"),
                       ({"query": {"multi_match": {"query": "a", "fields": ["title"], "slop": 1}}}, "slop"),
                       ({"query": {"multi_match": {"query": "a", "fields": ["title"], "type": "bool_prefix"}}}, "bool_prefix"),
                       ({"query": {"match_all": {}}, "highlight": {"fields": {"title": {}}, "boundary_scanner": "word"}},
                        "boundary_scanner"),
                       ({"query": {"match_all": {}}, "highlight": {"fields": {"title": {"type": "fvh"}}}}, "fvh"),
                       ({"query": {"match_all": {}}, "highlight": {"fields": {"title": {"highlight_query": {}}}}},
                        "highlight_query"),
                       ({"query": {"match_all": {}}, "highlight": {"fields": {"title": {}}, "no_match_size": 10}},
                        "no_match_size"),
                       ({"query": {"match_all": {}}, "highlight": {"tags_schema": "styled", "fields": {"title": {}}}},
                        "tags_schema")):
        r = s.http("POST", "/p/_search", body)
        eq(r.status, 400, "%r: %r" % (body, r))
        check(name in r.json["error"]["reason"], "the reason names [%s]" % name, r.json)

# ---- reference: the highlighter ----------------------------------------------------------------


def ref_marks(text, terms, phrases):
    """token spans marked by TERMS (a set) and exact PHRASES (lists of words)"""
    ts = toks(text)
    marked = set()
    for i, (t, _, _, _) in enumerate(ts):
        if t in terms:
            marked.add(i)
    for ph in phrases:
        for i in range(len(ts) - len(ph) + 1):
            if [ts[i + k][0] for k in range(len(ph))] == ph:
                marked.update(range(i, i + len(ph)))
    return [(ts[i][2], ts[i][3]) for i in sorted(marked)]


def ref_passages(text, marks, fs):
    out, s, n = [], 0, len(text)
    while s < n:
        while s < n and text[s].isspace():
            s += 1
        if s >= n:
            break
        e = s
        while e < n and not (text[e] in ".!?" and (e + 1 == n or text[e + 1].isspace())):
            e += 1
        if e < n:
            e += 1
        te = e
        while te > s and text[te - 1].isspace():
            te -= 1
        inside = [m for m in marks if m[0] >= s and m[1] <= te]
        if te - s <= fs:
            if inside:
                out.append((s, te, len(inside)))
        else:
            alltoks = [(a, b) for (_, _, a, b) in toks(text) if a >= s and b <= te]
            covered = s
            for m in inside:
                if m[0] < covered:
                    continue
                ps = s if m[1] - s <= fs else m[0]
                pe = m[1]
                for (a, b) in alltoks:
                    if a > m[0] and b - ps <= fs:
                        pe = b
                    elif a > m[0]:
                        break
                out.append((ps, pe, len([x for x in marks if x[0] >= ps and x[1] <= pe])))
                covered = pe
        s = e
    return out


def ref_fragments(text, marks, fs, nf, pre="<em>", post="</em>"):
    if not marks:
        return []
    ps = [(0, len(text), 1)] if nf == 0 else ref_passages(text, marks, fs)
    if nf and len(ps) > nf:
        ps = sorted(ps, key=lambda p: (-p[2], p[0]))[:nf]
    ps.sort(key=lambda p: p[0])
    frags = []
    for (a, b, _) in ps:
        out, at = "", a
        for (x, y) in marks:
            if x >= at and y <= b:
                out += text[at:x] + pre + text[x:y] + post
                at = y
        frags.append(out + text[at:b])
    return frags


def t_highlight():
    s = server()
    src = dict(DOCS)

    def hl(query, hlbody):
        r = s.http("POST", "/p/_search", {"query": query, "size": 100, "highlight": hlbody})
        eq(r.status, 200, "highlight: %r" % r)
        return {h["_id"]: h.get("highlight") for h in r.json["hits"]["hits"]}

    # a term query on body: fragments of at most 40 bytes, 2 of them
    got = hl({"match": {"body": "boat"}}, {"fields": {"body": {"fragment_size": 40, "number_of_fragments": 2}}})
    check(got, "matches")
    for d, h in got.items():
        text = src[d]["body"]
        want = ref_fragments(text, ref_marks(text, {"boat"}, []), 40, 2)
        eq(h, {"body": want}, "fragments of %s" % d)
    # the whole field (number_of_fragments 0), own tags, only the phrase's occurrences
    q = {"match_phrase": {"body": "red fox"}}
    got = hl(q, {"pre_tags": ["["], "post_tags": ["]"], "fields": {"body": {"number_of_fragments": 0}}})
    check(got, "phrase matches")
    for d, h in got.items():
        text = src[d]["body"]
        eq(h, {"body": ref_fragments(text, ref_marks(text, set(), [["red", "fox"]]), 100, 0, "[", "]")},
           "phrase highlight of %s" % d)
        check("[red]" in h["body"][0] and "[fox]" in h["body"][0], "the phrase is marked", h)
    # require_field_match: a title query highlights body only when it is false; wildcards
    q = {"match": {"title": "green"}}
    got = hl(q, {"fields": {"*": {"number_of_fragments": 0}}})
    for d, h in got.items():
        eq(sorted(h), ["title"], "require_field_match (default): only the queried field of %s" % d)
    got = hl(q, {"require_field_match": False, "fields": [{"b*": {"number_of_fragments": 0}}, {"title": {}}]})
    for d, h in got.items():
        text = src[d]["body"]
        want = ref_fragments(text, ref_marks(text, {"green"}, []), 100, 0)
        eq(h.get("body"), want or None, "require_field_match false: body of %s" % d)
        t = src[d]["title"]
        eq(h.get("title"), ref_fragments(t, ref_marks(t, {"green"}, []), 100, 5), "title of %s" % d)
    # bool: must_not terms are not highlighted; filter terms are
    q = {"bool": {"must": [{"match": {"title": "dog"}}], "filter": [{"match": {"title": "fox"}}],
                  "must_not": [{"match": {"title": "boat"}}]}}
    got = hl(q, {"fields": {"title": {"number_of_fragments": 0}}})
    check(got, "bool matches")
    for d, h in got.items():
        t = src[d]["title"]
        eq(h, {"title": ref_fragments(t, ref_marks(t, {"dog", "fox"}, []), 100, 0)}, "bool of %s" % d)


def t_clean_stop():
    """the node stops cleanly (under ASan: no leak, no memory error) and logged no sanitizer report"""
    s = server()
    rc = s.stop()
    log = s.logtext()
    check(rc == 0 and "AddressSanitizer" not in log and "runtime error:" not in log,
          "clean stop (exit %s)" % rc, log[-3000:])


if __name__ == "__main__":
    try:
        run_tests([("phrase_with_slop_matches_and_scores_as_lucene", t_phrase_with_slop),
                   ("match_phrase_prefix_expands_the_last_term", t_phrase_prefix),
                   ("multi_match_phrase_prefix_cross_best_most_fields", t_multi_match_types),
                   ("a_repeated_phrase_term_needs_its_own_occurrence", t_repeated_terms),
                   ("unsupported_phrase_and_highlight_options_answer_400", t_refusals),
                   ("highlight_fragments_as_the_reference", t_highlight),
                   ("the_node_stops_cleanly", t_clean_stop)])
    finally:
        if SRV:
            SRV.close()
