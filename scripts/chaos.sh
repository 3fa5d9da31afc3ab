#!/bin/sh
# chaos.sh: the long form of the replica fault test (tests/integration/test_replicas.py with
# QD_CHAOS=1): after the short form's faults, QD_CHAOS_ROUNDS (default 4) rounds of SIGKILL +
# restart of a random data node under the writer and the reader, then the coordinator (the
# leader) killed and restarted, then etcd restarted; the same end checks (every acknowledged
# write on every copy, copies agree) and the count of failed searches. BUILD (default build).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -x "$BUILD/quidditch" ] || { echo "chaos.sh: $BUILD/quidditch missing: run make first" >&2; exit 1; }
QD_CHAOS=1 QD_SOURCE_DIR=$(pwd) QD_BUILD_DIR=$(pwd)/$BUILD PYTHONDONTWRITEBYTECODE=1 \
  exec python3 tests/integration/test_replicas.py
