// xapian_ref.cc: the Xapian side of the search benchmark (bench_search runs it as a child).
// Indexes the same synthetic corpus (bench_search_corpus.h) into an on-disk glass database in
// DIR: TermGenerator without positions or stemming (lowercased words, like our standard
// analyzer), price/days/tier as sortable values, the JSON document as document data, the id
// as a boolean Q term, add_document (Xapian's bulk-load path); commit()
// (which fsyncs) every BATCH documents, as bench_search acks a bulk batch. Then runs the query
// set as OP_OR of two terms, top 10, BM25Weight(k1=1.2, k2=0, k3=1, b=0.75, min_normlen=0.5).
// Output, one per line: "index <seconds> <docs>", "run <r> <p50_us> <p99_us>" per run (run 0
// is the warm-up), "top <q> <id>..." for the first 20 queries of the last run, and
// "best <p50_us> <p99_us>" over each query's best time in runs 1..RUNS. Then the single-term
// and AND rows: "xq rare|and2 <p50_us> <p99_us>", each the median over RUNS runs (after a
// warm-up) of a run's percentile, for one rare term (sc_rare) and OP_AND of the OR pairs.
#include <xapian.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "bench_search_corpus.h"
}

static double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The rare-term and two-term AND rows (see the top comment).
static void run_xq(Xapian::Enquire &enq, const sc_corpus &c, int runs) {
  for (int kind = 0; kind < 2; kind++) {
    std::vector<double> p50, p99, lat(SC_QUERIES);
    for (int r = 0; r <= runs; r++) {
      for (int q = 0; q < SC_QUERIES; q++) {
        const char *a, *b;
        sc_query(&c, q, &a, &b);
        double s0 = now_s();
        if (kind == 0) enq.set_query(Xapian::Query(sc_rare(&c, q)));
        else enq.set_query(Xapian::Query(Xapian::Query::OP_AND, Xapian::Query(a), Xapian::Query(b)));
        Xapian::MSet m = enq.get_mset(0, 10);
        std::vector<std::string> ids;
        for (Xapian::MSetIterator it = m.begin(); it != m.end(); ++it) ids.push_back(std::to_string(*it - 1));
        lat[q] = (now_s() - s0) * 1e6;
      }
      if (!r) continue;
      std::vector<double> s = lat;
      std::qsort(s.data(), s.size(), sizeof(double), sc_cmp_double);
      p50.push_back(sc_pct(s.data(), s.size(), 50));
      p99.push_back(sc_pct(s.data(), s.size(), 99));
    }
    std::qsort(p50.data(), p50.size(), sizeof(double), sc_cmp_double);
    std::qsort(p99.data(), p99.size(), sizeof(double), sc_cmp_double);
    std::printf("xq %s %.3f %.3f\n", kind ? "and2" : "rare", p50[p50.size() / 2], p99[p99.size() / 2]);
    std::fflush(stdout);
  }
}

// Phrase mode (xapian_ref DICT N DIR BATCH RUNS phrase): the same corpus indexed with
// positions (index_text), then SC_QUERIES exact 2- and 3-word phrases (sc_phrase) as
// OP_PHRASE, top 10, BM25 as above; prints "xphrase index <seconds>" and
// "xphrase 2|3 <p50_us> <p99_us> <hits>", the median over RUNS runs after a warm-up of a run's
// percentile, hits the sum of get_matches_estimated over the last run's queries.
static int run_phrase(const sc_corpus &c, uint64_t n, const std::string &dir, uint64_t batch, int runs) {
  std::vector<char> text(121 * 16), ptext(121 * 16);
  double t0 = now_s();
  {
    Xapian::WritableDatabase db(dir, Xapian::DB_CREATE_OR_OVERWRITE);
    Xapian::TermGenerator tg;
    tg.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
    for (uint64_t i = 0; i < n; i++) {
      sc_doc d;
      sc_doc_make(&c, i, &d, text.data());
      Xapian::Document doc;
      tg.set_document(doc);
      tg.index_text(std::string(d.text, d.len));
      db.add_document(doc);
      if ((i + 1) % batch == 0) db.commit();
    }
    db.commit();
  }
  std::printf("xphrase index %.6f\n", now_s() - t0);
  Xapian::Database db(dir);
  Xapian::Enquire enq(db);
  enq.set_weighting_scheme(Xapian::BM25Weight(1.2, 0, 1, 0.75, 0.5));
  for (int k = 2; k <= 3; k++) {
    std::vector<double> p50, p99, lat(SC_QUERIES);
    unsigned long long hits = 0;
    for (int r = 0; r <= runs; r++) {
      hits = 0;
      for (int q = 0; q < SC_QUERIES; q++) {
        char ph[256];
        sc_phrase(&c, q, k, n, ph, ptext.data());
        std::vector<Xapian::Query> terms;
        for (char *t = std::strtok(ph, " "); t; t = std::strtok(nullptr, " ")) terms.emplace_back(t);
        double s0 = now_s();
        enq.set_query(Xapian::Query(Xapian::Query::OP_PHRASE, terms.begin(), terms.end(), terms.size()));
        Xapian::MSet m = enq.get_mset(0, 10);
        lat[q] = (now_s() - s0) * 1e6;
        hits += m.get_matches_estimated();
      }
      if (!r) continue;
      std::vector<double> s = lat;
      std::qsort(s.data(), s.size(), sizeof(double), sc_cmp_double);
      p50.push_back(sc_pct(s.data(), s.size(), 50));
      p99.push_back(sc_pct(s.data(), s.size(), 99));
    }
    std::qsort(p50.data(), p50.size(), sizeof(double), sc_cmp_double);
    std::qsort(p99.data(), p99.size(), sizeof(double), sc_cmp_double);
    std::printf("xphrase %d %.3f %.3f %llu\n", k, p50[p50.size() / 2], p99[p99.size() / 2], hits);
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: xapian_ref DICT N DIR BATCH [RUNS]\n");
    return 2;
  }
  const char *dict = argv[1];
  uint64_t n = std::strtoull(argv[2], nullptr, 10);
  std::string dir = argv[3];
  uint64_t batch = std::strtoull(argv[4], nullptr, 10);
  int runs = argc > 5 ? std::atoi(argv[5]) : 5;
  sc_corpus c;
  if (sc_load(&c, dict)) {
    std::fprintf(stderr, "xapian_ref: cannot load %s\n", dict);
    return 1;
  }
  if (argc > 6 && std::string(argv[6]) == "phrase") {
    try {
      int rc = run_phrase(c, n, dir, batch, runs);
      sc_free(&c);
      return rc;
    } catch (const Xapian::Error &e) {
      std::fprintf(stderr, "xapian_ref: %s\n", e.get_description().c_str());
      return 1;
    }
  }
  try {
    std::vector<char> text(121 * 16);
    char json[4096];
    double t0 = now_s();
    {
      Xapian::WritableDatabase db(dir, Xapian::DB_CREATE_OR_OVERWRITE);
      Xapian::TermGenerator tg;
      tg.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
      for (uint64_t i = 0; i < n; i++) {
        sc_doc d;
        sc_doc_make(&c, i, &d, text.data());
        std::snprintf(json, sizeof json, "{\"body\":\"%s\",\"price\":%.2f,\"days\":%d,\"tier\":%d}",
                      d.text, d.price, (int)d.days, (int)d.tier);
        Xapian::Document doc;
        tg.set_document(doc);
        tg.index_text_without_positions(std::string(d.text, d.len));
        doc.add_value(0, Xapian::sortable_serialise(d.price));
        doc.add_value(1, Xapian::sortable_serialise(d.days));
        doc.add_value(2, Xapian::sortable_serialise(d.tier));
        doc.set_data(json);
        std::string idterm = std::string("Q") + d.id;
        doc.add_boolean_term(idterm);
        db.add_document(doc);  // fresh database: add, not replace (Xapian's fast bulk path)
        if ((i + 1) % batch == 0) db.commit();
      }
      db.commit();
    }
    double t1 = now_s();
    std::printf("index %.6f %llu\n", t1 - t0, (unsigned long long)n);
    std::fflush(stdout);
    Xapian::Database db(dir);
    Xapian::Enquire enq(db);
    enq.set_weighting_scheme(Xapian::BM25Weight(1.2, 0, 1, 0.75, 0.5));
    std::vector<double> lat(SC_QUERIES), best(SC_QUERIES, 1e30);
    for (int r = 0; r <= runs; r++) {
      for (int q = 0; q < SC_QUERIES; q++) {
        const char *a, *b;
        sc_query(&c, q, &a, &b);
        double s0 = now_s();
        Xapian::Query qq(Xapian::Query::OP_OR, Xapian::Query(a), Xapian::Query(b));
        enq.set_query(qq);
        Xapian::MSet m = enq.get_mset(0, 10);
        std::vector<std::string> ids;
        // documents were added in order to a fresh database: docid = i + 1
        for (Xapian::MSetIterator it = m.begin(); it != m.end(); ++it)
          ids.push_back(std::to_string(*it - 1));
        lat[q] = (now_s() - s0) * 1e6;
        if (r && lat[q] < best[q]) best[q] = lat[q];
        if (r == runs && q < 20) {
          std::printf("top %d", q);
          for (auto &id : ids) std::printf(" %s", id.c_str());
          std::printf("\n");
        }
      }
      std::vector<double> s = lat;
      std::qsort(s.data(), s.size(), sizeof(double), sc_cmp_double);
      std::printf("run %d %.3f %.3f\n", r, sc_pct(s.data(), s.size(), 50), sc_pct(s.data(), s.size(), 99));
      std::fflush(stdout);
    }
    std::qsort(best.data(), best.size(), sizeof(double), sc_cmp_double);
    std::printf("best %.3f %.3f\n", sc_pct(best.data(), best.size(), 50), sc_pct(best.data(), best.size(), 99));
    std::fflush(stdout);
    run_xq(enq, c, runs);
  } catch (const Xapian::Error &e) {
    std::fprintf(stderr, "xapian_ref: %s\n", e.get_description().c_str());
    return 1;
  }
  sc_free(&c);
  return 0;
}
