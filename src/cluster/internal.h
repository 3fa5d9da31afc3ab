/* internal.h: what the files of src/cluster share. node.c owns the node handle, shards.c the
** shard sources and the scatter of one request, udf_script.c the UDF adapter and pins, etcd.c the etcd v3 client. */
#ifndef QC_INTERNAL_H
#define QC_INTERNAL_H

#include <pthread.h>

#include "cluster.h"

struct qc_node {
  char name[64];
  char data_dir[1024];
  qi_catalog *cat;
  qw_engine *engine;
  qu_registry *reg;
};

#endif
