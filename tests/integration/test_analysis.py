"""Issue 12 §2: analyzers (built-in, Snowball language analyzers, custom ones from
settings.analysis, analyzer/search_analyzer in mappings kept across a restart), _analyze, the
fuzzy, regexp and boosting queries, match with fuzziness, query_string, simple_query_string and
URI search (?q=). Expected answers are computed here independently: token offsets by a regex
tokenizer, Levenshtein / Damerau distances and regexps by Python over the corpus, boolean
queries by set algebra over the documents' words, and stems from a fixed list of Porter and
Snowball outputs written down below."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from qdtest import Server, check, eq, run_tests  # noqa: E402

# Porter's original algorithm (Elasticsearch's english analyzer: porter_stem), Snowball's English
# (porter2: the snowball analyzer), German and French Snowball
STEMS = {
    "english": {"running": "run", "jumped": "jump", "quickly": "quickli", "foxes": "fox",
                "happiness": "happi", "relational": "relat", "generalization": "gener",
                "caresses": "caress", "ponies": "poni", "agreed": "agre", "hopping": "hop",
                "dying": "dy", "skies": "ski"},
    "snowball": {"running": "run", "quickly": "quick", "generalization": "general",
                 "dying": "die", "news": "news", "skies": "sky", "generously": "generous"},
    "german": {"häuser": "haus", "katzen": "katz", "laufen": "lauf"},
    "french": {"chevaux": "cheval"},
}
ENGLISH_STOP = {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
                "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
                "there", "these", "they", "this", "to", "was", "will", "with"}


def analyze(s, body, path="/_analyze"):
    r = s.http("POST", path, body)
    eq(r.status, 200, "_analyze %r: %r" % (body, r))
    return r.json["tokens"]


def refused(r, name, what, status=400):
    eq(r.status, status, "%s: %r" % (what, r))
    reason = r.json["error"]["reason"]
    check(name in reason, "%s: the reason names [%s]" % (what, name), reason)


def t_analyzers():
    text = "The QUICK brown-fox's 2 jumps, e.g. over_the LAZY dog"
    with Server() as s:
        # standard: words (letters/digits, _ joins, ' inside), lowercased, offsets and positions
        words = [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[A-Za-z0-9_]+(?:['.][A-Za-z0-9_]+)*", text)]
        toks = analyze(s, {"analyzer": "standard", "text": text})
        eq([(t["token"], t["start_offset"], t["end_offset"], t["position"]) for t in toks],
           [(w.lower(), a, b, i) for i, (w, a, b) in enumerate(words)], "standard tokens")
        eq(toks[4]["type"], "<NUM>", "a number's type")
        eq(toks[0]["type"], "<ALPHANUM>", "a word's type")
        # whitespace: split on spaces, nothing else
        toks = analyze(s, {"analyzer": "whitespace", "text": text})
        eq([t["token"] for t in toks], text.split(), "whitespace tokens")
        eq({t["type"] for t in toks}, {"word"}, "whitespace type")
        # simple: runs of letters, lowercased
        toks = analyze(s, {"analyzer": "simple", "text": text})
        eq([t["token"] for t in toks], [w.lower() for w in re.findall(r"[A-Za-z]+", text)], "simple")
        # stop: simple minus English stop words, positions keep the gaps
        letters = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
        toks = analyze(s, {"analyzer": "stop", "text": text})
        eq([(t["token"], t["position"]) for t in toks],
           [(w, i) for i, w in enumerate(letters) if w not in ENGLISH_STOP], "stop")
        toks = analyze(s, {"analyzer": "keyword", "text": text})
        eq([(t["token"], t["start_offset"], t["end_offset"]) for t in toks], [(text, 0, len(text))], "keyword")
        # Snowball / Porter stems
        for an, table in STEMS.items():
            words = list(table)
            toks = analyze(s, {"analyzer": an, "text": " ".join(words)})
            eq([t["token"] for t in toks], [table[w] for w in words], "%s stems" % an)
        toks = analyze(s, {"analyzer": "english", "text": "the dog's bones"})
        eq([(t["token"], t["position"]) for t in toks], [("dog", 1), ("bone", 2)], "english: stop, possessive")
        # tokenizer + filters, inline filter definitions; several texts
        toks = analyze(s, {"tokenizer": "whitespace",
                           "filter": ["lowercase", "asciifolding",
                                      {"type": "stop", "stopwords": ["über"]},
                                      {"type": "stemmer", "language": "porter2"}],
                           "text": ["Café Über Crème RUNNING", "Naïve"]})
        eq([(t["token"], t["position"], t["start_offset"]) for t in toks],
           [("cafe", 0, 0), ("uber", 1, 5), ("creme", 2, 10), ("run", 3, 16), ("naiv", 104, 24)],
           "tokenizer + filters over two texts (positions +100, offsets +1)")
        # non-ASCII offsets are UTF-16 units, as Elasticsearch counts them
        toks = analyze(s, {"analyzer": "standard", "text": "é 𝒳 x"})
        eq([(t["token"], t["start_offset"]) for t in toks][-1], ("x", 5), "UTF-16 offsets")
        # what is not served answers 400 naming it
        refused(s.http("POST", "/_analyze", {"analyzer": "klingon", "text": "x"}), "klingon", "unknown analyzer")
        refused(s.http("POST", "/_analyze", {"text": "x", "analyzer": "standard", "explain": True}), "explain", "explain")
        refused(s.http("POST", "/_analyze", {"text": "x", "tokenizer": "standard", "char_filter": ["html_strip"]}),
                "char_filter", "char_filter")
        refused(s.http("POST", "/_analyze", {"text": "x", "tokenizer": "ngram"}), "ngram", "unknown tokenizer")
        refused(s.http("POST", "/_analyze", {"text": "x", "tokenizer": "standard", "filter": ["synonym"]}),
                "synonym", "unknown filter")
        refused(s.http("POST", "/_analyze", {"text": "x", "analyzer": "standard", "texts": 1}), "texts", "unknown key")
        refused(s.http("POST", "/_analyze", {"text": "x", "tokenizer": "standard",
                                              "filter": [{"type": "stemmer", "language": "light_english"}]}),
                "light_english", "a stemmer that is not Snowball")


SETTINGS = {"analysis": {
    "filter": {"my_stop": {"type": "stop", "stopwords": ["shoes", "the"]},
               "my_stem": {"type": "snowball", "language": "English"}},
    "analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                            "filter": ["lowercase", "asciifolding", "my_stop", "my_stem"]},
                 "std_stop": {"type": "standard", "stopwords": "_english_"}}}}
MAPPINGS = {"properties": {
    "title": {"type": "text", "analyzer": "english"},
    "body": {"type": "text", "analyzer": "folded"},
    "raw": {"type": "text", "analyzer": "folded", "search_analyzer": "whitespace"},
    "plain": {"type": "text", "fields": {"en": {"type": "text", "analyzer": "english"}}}}}


def ids(r):
    eq(r.status, 200, "search: %r" % r)
    return sorted(h["_id"] for h in r.json["hits"]["hits"])


def t_custom_analyzers_index_and_query_time():
    with Server() as s:
        eq(s.http("PUT", "/shop", {"settings": SETTINGS, "mappings": MAPPINGS}).status, 200, "create")
        docs = {"1": {"title": "Running shoes", "body": "Crème brûlée shoes", "raw": "Running Cafés", "plain": "running"},
                "2": {"title": "the runner", "body": "café running", "raw": "walking", "plain": "walks"}}
        lines = []
        for i, d in docs.items():
            lines += [{"index": {"_id": i}}, d]
        eq(s.bulk(lines, "/shop/_bulk?refresh=true").json["errors"], False, "bulk")

        def q(field, text, **kw):
            return ids(s.http("POST", "/shop/_search", {"query": {"match": {field: dict(query=text, **kw)}}}))

        for _ in range(2):  # before and after a restart: the analyzers are kept with the index
            eq(q("title", "runs"), ["1"], "english at index and query time (runs ~ running)")
            eq(q("body", "CREME"), ["1"], "folded: lowercase + asciifolding")
            eq(q("body", "shoes"), [], "folded: the custom stop word")
            eq(q("body", "runs"), ["2"], "folded: Snowball stems")
            eq(q("raw", "run"), ["1"], "raw: indexed stemmed")
            eq(q("raw", "Running"), [], "raw: search_analyzer whitespace keeps the query as it is")
            eq(q("plain", "walking"), [], "plain: standard")
            eq(q("plain.en", "walking"), ["2"], "a multi-field with its own analyzer")
            eq(q("plain.en", "walks"), ["2"], "plain.en: english at query time")
            eq(q("plain.en", "walks", analyzer="whitespace"), [], "match's analyzer option replaces it")
            eq(q("plain", "WALKS", analyzer="standard"), ["2"], "match's analyzer option (standard)")
            toks = analyze(s, {"field": "body", "text": "Crème shoes"}, "/shop/_analyze")
            eq([t["token"] for t in toks], ["creme"], "_analyze by field")
            toks = analyze(s, {"analyzer": "std_stop", "text": "the Running"}, "/shop/_analyze")
            eq([(t["token"], t["position"]) for t in toks], [("running", 1)], "standard with stopwords")
            m = s.http("GET", "/shop/_mapping").json["shop"]["mappings"]["properties"]
            eq((m["raw"]["analyzer"], m["raw"]["search_analyzer"]), ("folded", "whitespace"), "mapping shows analyzers")
            s.restart()
        refused(s.http("PUT", "/shop/_mapping", {"properties": {"title": {"type": "text", "analyzer": "folded"}}}),
                "analyzer", "changing a field's analyzer")
        refused(s.http("PUT", "/bad1", {"mappings": {"properties": {"t": {"type": "text", "analyzer": "nope"}}}}),
                "nope", "an analyzer the index lacks")
        refused(s.http("PUT", "/bad2", {"settings": {"analysis": {"filter": {"f": {"type": "synonym"}}}}}),
                "synonym", "an unknown filter type")
        refused(s.http("PUT", "/bad3", {"settings": {"analysis": {"tokenizer": {"t": {"type": "ngram"}}}}}),
                "tokenizer", "custom tokenizers")
        refused(s.http("PUT", "/bad4", {"settings": {"analysis": {"analyzer": {"a": {"type": "custom", "tokenizer": "standard", "filters": []}}}}}),
                "filters", "an unknown analyzer key")
        refused(s.http("PUT", "/bad5", {"mappings": {"properties": {"t": {"type": "text", "search_analyzer": "standard"}}}}),
                "search_analyzer", "search_analyzer without analyzer")
        eq(s.http("HEAD", "/bad2").status, 404, "a refused create leaves nothing")


# ---- fuzzy, regexp, boosting ---------------------------------------------------------------------

WORDS = ["laptop", "laptops", "lapdog", "labtop", "altpop", "lpatop", "lattop", "kitten", "sitting",
         "mitten", "smitten", "fitting", "knitting", "phone", "phones", "fone", "shone", "honey",
         "laptp", "la", "lb", "ab", "a", "xylophone", "telephone", "tablet", "ablet", "tablets"]


def lev(a, b, transpositions=True):
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if transpositions and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def auto(term, lo=3, hi=6):
    return 0 if len(term) < lo else 1 if len(term) < hi else 2


def load_words(s):
    eq(s.http("PUT", "/w", {"mappings": {"properties": {"w": {"type": "text"}, "k": {"type": "keyword"},
                                                          "n": {"type": "long"}}}}).status, 200, "create w")
    lines = []
    for i, w in enumerate(WORDS):
        lines += [{"index": {"_id": w}}, {"w": w, "k": w, "n": i}]
    eq(s.bulk(lines[: len(lines) // 2], "/w/_bulk?refresh=true").json["errors"], False, "bulk 1")
    eq(s.bulk(lines[len(lines) // 2:], "/w/_bulk?refresh=true").json["errors"], False, "bulk 2 (a second segment)")


def search_ids(s, query, size=100):
    r = s.http("POST", "/w/_search", {"query": query, "size": size})
    eq(r.status, 200, "%r: %r" % (query, r))
    return sorted(h["_id"] for h in r.json["hits"]["hits"])


def t_fuzzy_regexp_boosting():
    with Server() as s:
        load_words(s)
        for term in ["laptop", "kitten", "phone", "la", "tablet", "fone"]:
            for fz in [0, 1, 2, "AUTO", "AUTO:2,4"]:
                k = fz if isinstance(fz, int) else auto(term, *( (2, 4) if fz == "AUTO:2,4" else (3, 6)))
                want = sorted(w for w in WORDS if lev(term, w) <= k)
                eq(search_ids(s, {"fuzzy": {"w": {"value": term, "fuzziness": fz}}}), want,
                   "fuzzy %s~%s" % (term, fz))
                eq(search_ids(s, {"match": {"w": {"query": term.upper(), "fuzziness": fz}}}), want,
                   "match %s fuzziness %s (analyzed first)" % (term, fz))
            want = sorted(w for w in WORDS if lev(term, w, False) <= 2)
            eq(search_ids(s, {"fuzzy": {"k": {"value": term, "fuzziness": 2, "transpositions": False}}}), want,
               "fuzzy %s without transpositions (keyword field)" % term)
            want = sorted(w for w in WORDS if lev(term, w) <= 2 and w[:2] == term[:2])
            eq(search_ids(s, {"fuzzy": {"w": {"value": term, "fuzziness": 2, "prefix_length": 2}}}), want,
               "fuzzy %s prefix_length 2" % term)
            cands = sorted((lev(term, w), w) for w in WORDS if lev(term, w) <= 2)
            eq(search_ids(s, {"fuzzy": {"w": {"value": term, "fuzziness": 2, "max_expansions": 2}}}),
               sorted(w for _, w in cands[:2]), "fuzzy %s max_expansions 2: the closest terms" % term)
        # scores: a closer term scores higher (Lucene's similarity boost)
        r = s.http("POST", "/w/_search", {"query": {"fuzzy": {"w": {"value": "laptop", "fuzziness": 1}}}})
        check(r.json["hits"]["hits"][0]["_id"] == "laptop", "the exact term first", r.json)
        # regexp: Python's re over the dictionary
        for pat in ["lap.*", "la[bp]top", "l.?ptops?", "(kit|mit)ten", "[^l].*one", "a{1,2}b?", ".*i(tt|n)+.*",
                    "tab\\let", "\"phone\"s?", "[a-c]{2}", ".", "x.*e|f.*"]:
            py = pat.replace('"', "").replace("\\l", "l")
            want = sorted(w for w in WORDS if re.fullmatch(py, w))
            eq(search_ids(s, {"regexp": {"w": {"value": pat}}}), want, "regexp %s" % pat)
        eq(search_ids(s, {"regexp": {"w": {"value": "a~b", "flags": "NONE"}}}), [], "flags NONE: ~ is a literal")
        refused(s.http("POST", "/w/_search", {"query": {"regexp": {"w": "lap~top"}}}), "~", "regexp complement")
        refused(s.http("POST", "/w/_search", {"query": {"regexp": {"w": "(lap"}}}), "(lap", "a bad regexp")
        refused(s.http("POST", "/w/_search", {"query": {"regexp": {"w": {"value": "x", "flags": "INTERSECTION"}}}}),
                "INTERSECTION", "regexp flags")
        refused(s.http("POST", "/w/_search", {"query": {"regexp": {"w": "a{1,30000}"}}}), "too complex", "a bounded regexp")
        refused(s.http("POST", "/w/_search", {"query": {"fuzzy": {"w": {"value": "x", "fuzziness": 3}}}}),
                "fuzziness", "three edits")
        # boosting: the negative matches' scores times negative_boost
        pos = {"fuzzy": {"w": {"value": "phone", "fuzziness": 1}}}
        plain = {h["_id"]: h["_score"] for h in s.http("POST", "/w/_search", {"query": pos}).json["hits"]["hits"]}
        r = s.http("POST", "/w/_search", {"query": {"boosting": {"positive": pos, "negative": {"wildcard": {"w": "*s"}},
                                                                 "negative_boost": 0.25}}})
        got = {h["_id"]: h["_score"] for h in r.json["hits"]["hits"]}
        eq(sorted(got), sorted(plain), "boosting matches what positive matches")
        for i, sc in got.items():
            want = plain[i] * (0.25 if i.endswith("s") else 1)
            check(abs(sc - want) < 1e-5, "boosting score of %s" % i, (sc, want))
        refused(s.http("POST", "/w/_search", {"query": {"boosting": {"positive": pos, "negative": pos}}}),
                "negative_boost", "boosting without negative_boost")


# ---- query_string, simple_query_string, ?q= ------------------------------------------------------

SHOP = {"a": {"title": "red laptop", "tag": "x", "n": 1},
        "b": {"title": "blue laptop bag", "tag": "y", "n": 5},
        "c": {"title": "green phone", "tag": "x", "n": 9},
        "d": {"title": "red phone case", "tag": "z", "n": 3},
        "e": {"title": "blue bag", "tag": "y", "n": 7}}


def has(i, w, f="title"):
    return w in str(SHOP[i][f]).split()


def t_query_strings():
    with Server() as s:
        eq(s.http("PUT", "/shop", {"mappings": {"properties": {"title": {"type": "text"}, "tag": {"type": "keyword"},
                                                               "n": {"type": "long"}}}}).status, 200, "create")
        lines = []
        for i, d in SHOP.items():
            lines += [{"index": {"_id": i}}, d]
        eq(s.bulk(lines, "/shop/_bulk?refresh=true").json["errors"], False, "bulk")
        A = set(SHOP)

        def qs(q, **kw):
            r = s.http("POST", "/shop/_search", {"query": {"query_string": dict(query=q, **kw)}})
            return ids(r)

        cases = [
            ("title:red AND tag:x", {i for i in A if has(i, "red") and SHOP[i]["tag"] == "x"}, {}),
            ("(red OR blue) AND laptop", {i for i in A if (has(i, "red") or has(i, "blue")) and has(i, "laptop")}, {"default_field": "title"}),
            ("+red -phone", {i for i in A if has(i, "red") and not has(i, "phone")}, {"default_field": "title"}),
            ("red phone", {i for i in A if has(i, "red") or has(i, "phone")}, {"default_field": "title"}),
            ("red phone", {i for i in A if has(i, "red") and has(i, "phone")}, {"default_field": "title", "default_operator": "AND"}),
            ("NOT bag", {i for i in A if not has(i, "bag")}, {"default_field": "title"}),
            ("red || bag && blue", {i for i in A if has(i, "blue") and has(i, "bag")}, {"default_field": "title"}),
            ("n:[3 TO 7]", {i for i in A if 3 <= SHOP[i]["n"] <= 7}, {}),
            ("n:{3 TO 7]", {i for i in A if 3 < SHOP[i]["n"] <= 7}, {}),
            ("n:[5 TO *]", {i for i in A if SHOP[i]["n"] >= 5}, {}),
            ("n:>=5 AND n:<9", {i for i in A if 5 <= SHOP[i]["n"] < 9}, {}),
            ("lap*", {i for i in A if any(w.startswith("lap") for w in SHOP[i]["title"].split())}, {"default_field": "title"}),
            ("title:ph?ne", {i for i in A if has(i, "phone")}, {}),
            ("title:phnoe~1", {i for i in A if has(i, "phone")}, {}),
            ("title:/b.g/", {i for i in A if has(i, "bag")}, {}),
            ('"blue bag"', {"e"}, {"default_field": "title"}),  # a phrase: b has "blue laptop bag"
            ('"blue bag"~1', {"b", "e"}, {"default_field": "title"}),  # slop 1 lets "laptop" in
            ('"bag blue"', set(), {"default_field": "title"}),
            ('"red phone"', {"d"}, {}),  # no field: a phrase on every field
            ("_exists_:tag AND title:(laptop OR case)", {i for i in A if has(i, "laptop") or has(i, "case")}, {}),
            ("laptop", {i for i in A if has(i, "laptop")}, {}),  # no field: every field
            ("y", {i for i in A if SHOP[i]["tag"] == "y"}, {"fields": ["title", "tag"]}),
        ]
        for q, want, kw in cases:
            eq(qs(q, **kw), sorted(want), "query_string %r %r" % (q, kw))
        # field boosts: title^3 puts the title match first
        r = s.http("POST", "/shop/_search", {"query": {"query_string": {"query": "x OR bag", "fields": ["title^3", "tag"]}}})
        top = r.json["hits"]["hits"][0]["_id"]
        check(has(top, "bag"), "title^3 wins", r.json)
        r2 = s.http("POST", "/shop/_search", {"query": {"query_string": {"query": "x OR bag", "fields": ["title", "tag^30"]}}})
        check(SHOP[r2.json["hits"]["hits"][0]["_id"]]["tag"] == "x", "tag^30 wins", r2.json)
        # syntax errors: Elasticsearch's query_shard_exception
        for bad in ["red AND", "(red", "title:[1 TO", '"red', "AND red", "red)"]:
            r = s.http("POST", "/shop/_search", {"query": {"query_string": {"query": bad}}})
            eq(r.status, 400, "syntax error %r" % bad)
            eq(r.json["error"]["type"], "query_shard_exception", "syntax error type %r" % bad)
            check("Failed to parse query" in r.json["error"]["reason"], "reason", r.json)
        refused(s.http("POST", "/shop/_search", {"query": {"query_string": {"query": "x", "quote_field_suffix": ".x"}}}),
                "quote_field_suffix", "an unserved query_string option")
        # simple_query_string: lenient syntax, + | - " * ~
        def sqs(q, **kw):
            return ids(s.http("POST", "/shop/_search", {"query": {"simple_query_string": dict(query=q, fields=["title"], **kw)}}))
        eq(sqs("red + phone"), sorted(i for i in A if has(i, "red") and has(i, "phone")), "sqs +")
        eq(sqs("laptop | case"), sorted(i for i in A if has(i, "laptop") or has(i, "case")), "sqs |")
        eq(sqs("bag -blue", default_operator="and"), sorted(i for i in A if has(i, "bag") and not has(i, "blue")), "sqs -")
        eq(sqs("ph*"), sorted(i for i in A if has(i, "phone")), "sqs prefix")
        eq(sqs("phnoe~1"), sorted(i for i in A if has(i, "phone")), "sqs fuzzy")
        eq(sqs('"red laptop" | (green)'), sorted(i for i in A if (has(i, "red") and has(i, "laptop")) or has(i, "green")), "sqs phrase, group")
        eq(sqs("red AND) ("), sorted(i for i in A if has(i, "red") or has(i, "and")), "sqs never fails on syntax")
        refused(s.http("POST", "/shop/_search", {"query": {"simple_query_string": {"query": "x", "flags": "OR|AND"}}}),
                "flags", "sqs flags")
        # URI search: ?q= with df and default_operator, on _search and _count
        r = s.http("GET", "/shop/_search?q=title:red")
        eq(ids(r), sorted(i for i in A if has(i, "red")), "?q=title:red")
        r = s.http("GET", "/shop/_search?q=red%20phone&df=title&default_operator=AND")
        eq(ids(r), sorted(i for i in A if has(i, "red") and has(i, "phone")), "?q= with df, default_operator")
        r = s.http("GET", "/shop/_count?q=tag:y")
        eq(r.json["count"], sum(1 for i in A if SHOP[i]["tag"] == "y"), "_count?q=")
        r = s.http("GET", "/shop/_count?q=red%20AND")
        eq((r.status, r.json["error"]["type"]), (400, "query_shard_exception"), "?q= syntax error")
        refused(s.http("GET", "/shop/_search?df=title"), "df", "df without q")
        refused(s.http("POST", "/shop/_search?q=red", {"query": {"match_all": {}}}), "q", "q and a body query")


if __name__ == "__main__":
    run_tests([("analyzers_and_analyze", t_analyzers),
               ("custom_analyzers_at_index_and_query_time", t_custom_analyzers_index_and_query_time),
               ("fuzzy_regexp_boosting", t_fuzzy_regexp_boosting),
               ("query_string_simple_query_string_uri_search", t_query_strings)])
