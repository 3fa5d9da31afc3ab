/* params.c: the URL parameters each route serves, and the check that refuses any other before
** the handler runs, as Elasticsearch does ("request [/i/_search] contains unrecognized parameter:
** [foo]", 400). A parameter a handler does not read would be silently ignored and answer another
** question (?version_type=external, ?filter_path=...), so a new parameter joins this table with
** the code that serves it. tests/unit/server/test_params.c checks that every route has a row.
** Names the handler refuses with a better message of its own (?q=, ?scroll=) are listed so its
** message wins. */
#include <string.h>

#include "internal.h"

#define P_REFRESH "refresh"
#define P_SOURCE "_source _source_includes _source_excludes"
#define P_DOC_WRITE P_REFRESH " routing if_seq_no if_primary_term"
#define P_SEARCH "q df default_operator analyzer scroll " P_SOURCE " from size sort timeout ignore_unavailable search_type routing"
#define P_COUNT "q df default_operator analyzer ignore_unavailable routing"
#define P_SETTINGS_GET "flat_settings include_defaults"
#define P_UDF_PUT "export kind returns description params"

/* Indexed by route id; "" = none besides the common ones. */
static const char *const route_params[QS_ROUTE_COUNT] = {
    [QS_R_ROOT] = "", [QS_R_ROOT_HEAD] = "", [QS_R_METRICS] = "",
    [QS_R_HEALTH] = "", [QS_R_NODES] = "",
    [QS_R_CAT_INDICES] = "format v", [QS_R_CAT_NODES] = "format v", [QS_R_CAT_SHARDS] = "format v",
    [QS_R_I_SEARCH] = "", [QS_R_I_SHARD_PUT] = "", [QS_R_I_SHARD_DELETE] = "",
    [QS_R_I_UDF_SYNC] = "", [QS_R_I_UDF_DELETE] = "", [QS_R_I_REPLICA] = "", [QS_R_I_RECOVER] = "",
    [QS_R_API_KEY_CREATE] = "", [QS_R_API_KEY_PUT] = "", [QS_R_API_KEY_GET] = "id name",
    [QS_R_API_KEY_DELETE] = "",
    [QS_R_BULK] = P_REFRESH " routing", [QS_R_BULK_PUT] = P_REFRESH " routing",
    [QS_R_INDEX_BULK] = P_REFRESH " routing", [QS_R_INDEX_BULK_PUT] = P_REFRESH " routing",
    [QS_R_REFRESH_ALL] = "", [QS_R_REFRESH] = "", [QS_R_REFRESH_GET] = "",
    [QS_R_SEARCH_ALL] = P_SEARCH, [QS_R_SEARCH_ALL_GET] = P_SEARCH,
    [QS_R_SEARCH] = P_SEARCH, [QS_R_SEARCH_GET] = P_SEARCH,
    [QS_R_COUNT_ALL] = P_COUNT, [QS_R_COUNT_ALL_GET] = P_COUNT,
    [QS_R_COUNT] = P_COUNT, [QS_R_COUNT_GET] = P_COUNT,
    [QS_R_MSEARCH_ALL] = "search_type", [QS_R_MSEARCH_ALL_GET] = "search_type",
    [QS_R_MSEARCH] = "search_type", [QS_R_MSEARCH_GET] = "search_type",
    [QS_R_MGET_ALL] = P_SOURCE, [QS_R_MGET_ALL_GET] = P_SOURCE,
    [QS_R_MGET] = P_SOURCE, [QS_R_MGET_GET] = P_SOURCE,
    [QS_R_UDF_LIST] = "", [QS_R_UDF_PUT] = P_UDF_PUT, [QS_R_UDF_POST] = P_UDF_PUT,
    [QS_R_UDF_GET] = "version", [QS_R_UDF_DELETE] = "", [QS_R_UDF_VERSIONS] = "",
    [QS_R_UDF_ROLLBACK] = "to", [QS_R_UDF_TEST] = "version",
    [QS_R_INDEX_PUT] = "", [QS_R_INDEX_DELETE] = "", [QS_R_INDEX_HEAD] = "", [QS_R_INDEX_GET] = "",
    [QS_R_MAPPING_GET] = "", [QS_R_MAPPING_PUT] = "",
    [QS_R_DOC_POST] = P_DOC_WRITE " op_type", [QS_R_DOC_PUT] = P_DOC_WRITE " op_type",
    [QS_R_DOC_POST_ID] = P_DOC_WRITE " op_type",
    [QS_R_DOC_GET] = P_SOURCE " routing", [QS_R_DOC_HEAD] = P_SOURCE " routing",
    [QS_R_DOC_DELETE] = P_DOC_WRITE, [QS_R_DOC_CREATE] = P_REFRESH " routing",
    [QS_R_DOC_CREATE_POST] = P_REFRESH " routing", [QS_R_DOC_UPDATE] = P_DOC_WRITE,
    [QS_R_DELETE_BY_QUERY] = P_REFRESH " routing",
    [QS_R_CAT_HEALTH] = "format v", [QS_R_CAT_COUNT_ALL] = "format v", [QS_R_CAT_COUNT] = "format v",
    [QS_R_CAT_ALIASES] = "format v",
    [QS_R_STATS_ALL] = "", [QS_R_STATS] = "",
    [QS_R_FLUSH_ALL] = "", [QS_R_FLUSH_ALL_GET] = "", [QS_R_FLUSH] = "", [QS_R_FLUSH_GET] = "",
    [QS_R_FORCEMERGE_ALL] = "max_num_segments", [QS_R_FORCEMERGE] = "max_num_segments",
    [QS_R_FIELD_CAPS_ALL] = "fields", [QS_R_FIELD_CAPS_ALL_POST] = "fields",
    [QS_R_FIELD_CAPS] = "fields", [QS_R_FIELD_CAPS_POST] = "fields",
    [QS_R_SETTINGS_ALL] = P_SETTINGS_GET, [QS_R_SETTINGS_GET] = P_SETTINGS_GET,
    [QS_R_SETTINGS_ALL_NAME] = P_SETTINGS_GET, [QS_R_SETTINGS_GET_NAME] = P_SETTINGS_GET,
    [QS_R_VALIDATE_ALL] = "explain", [QS_R_VALIDATE_ALL_POST] = "explain",
    [QS_R_VALIDATE] = "explain", [QS_R_VALIDATE_POST] = "explain",
    [QS_R_SOURCE_GET] = P_SOURCE " routing", [QS_R_SOURCE_HEAD] = P_SOURCE " routing",
    [QS_R_ANALYZE_ALL] = "", [QS_R_ANALYZE_ALL_POST] = "", [QS_R_ANALYZE] = "", [QS_R_ANALYZE_POST] = "",
    [QS_R_SCROLL] = "scroll scroll_id", [QS_R_SCROLL_GET] = "scroll scroll_id",
    [QS_R_SCROLL_ID] = "scroll", [QS_R_SCROLL_ID_GET] = "scroll",
    [QS_R_SCROLL_CLEAR] = "", [QS_R_SCROLL_CLEAR_ID] = "",
    [QS_R_PIT_OPEN] = "keep_alive ignore_unavailable", [QS_R_PIT_CLOSE] = "",
    [QS_R_ALIASES_POST] = "", [QS_R_ALIAS_GET_ALL] = "", [QS_R_ALIAS_GET_NAME] = "",
    [QS_R_ALIAS_GET_INDEX] = "", [QS_R_ALIAS_GET_ONE] = "", [QS_R_ALIAS_PUT] = "",
    [QS_R_ALIAS_POST] = "", [QS_R_ALIASES_PUT] = "", [QS_R_ALIAS_DELETE] = "",
    [QS_R_ALIASES_DELETE] = "", [QS_R_INDEX_CLOSE] = "", [QS_R_INDEX_OPEN] = "",
    [QS_R_ITEMPLATE_LIST] = "", [QS_R_ITEMPLATE_GET] = "", [QS_R_ITEMPLATE_PUT] = "",
    [QS_R_ITEMPLATE_POST] = "", [QS_R_ITEMPLATE_DELETE] = "", [QS_R_CTEMPLATE_LIST] = "",
    [QS_R_CTEMPLATE_GET] = "", [QS_R_CTEMPLATE_PUT] = "", [QS_R_CTEMPLATE_POST] = "",
    [QS_R_CTEMPLATE_DELETE] = "", [QS_R_LTEMPLATE_GET] = "", [QS_R_LTEMPLATE_GET1] = "",
    [QS_R_LTEMPLATE_PUT] = "", [QS_R_LTEMPLATE_POST] = "", [QS_R_LTEMPLATE_DELETE] = "",
    [QS_R_REINDEX] = P_REFRESH, [QS_R_UPDATE_BY_QUERY] = P_REFRESH " conflicts",
    [QS_R_EXPLAIN] = "", [QS_R_EXPLAIN_POST] = "",
    [QS_R_CLUSTER_STATS] = "", [QS_R_NODES_STATS] = "",
    [QS_R_SETTINGS_PUT] = "", [QS_R_SETTINGS_PUT_ALL] = "",
};

/* every route takes these (http.c serves ?pretty) */
static const char common_params[] = "pretty";

static int listed(const char *list, const char *key) {
  size_t n = strlen(key);
  for (const char *p = list; (p = strstr(p, key)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n])) return 1;
  return 0;
}

const char *qs__route_params(int route) {
  return route >= 0 && route < QS_ROUTE_COUNT ? route_params[route] : NULL;
}

typedef struct check_ctx {
  const char *list;
  const char *bad; /* the first parameter not served */
} check_ctx;

static enum MHD_Result each_arg(void *ud, enum MHD_ValueKind kind, const char *key,
                                const char *value) {
  check_ctx *c = ud;
  (void)kind;
  (void)value;
  if (!key || listed(common_params, key) || listed(c->list, key)) return MHD_YES;
  c->bad = key;
  return MHD_NO;
}

int qs__params_check(qs_req *r) {
  const char *list = qs__route_params(r->route);
  if (!list || !r->query) return 1; /* no row: the table test fails the build's tests instead */
  check_ctx c = {list, NULL};
  MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, each_arg, &c);
  if (!c.bad) return 1;
  qs__reply_error(r, 400, "illegal_argument_exception",
                  "request [%.200s] contains unrecognized parameter: [%.64s]", r->path, c.bad);
  return 0;
}
