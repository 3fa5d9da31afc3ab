#!/bin/sh
# cluster.sh: a Quidditch cluster on this machine for trying it (docs/cluster.md): etcd + 3 data
# nodes + a coordinator on loopback, data and logs under build/cluster/. The coordinator
# listens on 127.0.0.1:9200 (COORD_PORT), like the embedded default, so qctl and curl work
# unchanged. Ctrl-C stops everything this script started (by pid), etcd last.
set -eu
cd "$(dirname "$0")/.."
BIN=build/quidditch
ETCD=${ETCD:-/usr/bin/etcd}
DIR=${CLUSTER_DIR:-build/cluster}
COORD_PORT=${COORD_PORT:-9200}
DATA_PORT_BASE=${DATA_PORT_BASE:-9300}
ETCD_PORT=${ETCD_PORT:-2379}
[ -x "$BIN" ] || { echo "cluster.sh: $BIN missing: run make first" >&2; exit 1; }
[ -x "$ETCD" ] || { echo "cluster.sh: $ETCD missing: apt-get install etcd-server" >&2; exit 1; }
mkdir -p "$DIR"
PIDS=""
stop() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $PIDS; do wait "$p" 2>/dev/null || true; done
  [ -n "${ETCD_PID:-}" ] && kill "$ETCD_PID" 2>/dev/null && wait "$ETCD_PID" 2>/dev/null || true
  echo "cluster stopped (data kept in $DIR)"
}
trap 'stop; exit 0' INT TERM
URL="http://127.0.0.1:$ETCD_PORT"
PEER="http://127.0.0.1:$((ETCD_PORT + 1))"
"$ETCD" --data-dir "$DIR/etcd" --listen-client-urls "$URL" --advertise-client-urls "$URL" \
  --listen-peer-urls "$PEER" --initial-advertise-peer-urls "$PEER" \
  --initial-cluster "default=$PEER" >"$DIR/etcd.log" 2>&1 &
ETCD_PID=$!
i=0
until curl -s -X POST "$URL/v3/kv/range" -d '{"key":"AA=="}' >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "etcd did not start: $DIR/etcd.log" >&2; stop; exit 1; }
  sleep 0.1
done
for n in 1 2 3; do
  "$BIN" serve --role data --etcd "$URL" --node-name "dn$n" --listen "127.0.0.1:$((DATA_PORT_BASE + n))" \
    --data "$DIR/dn$n" >"$DIR/dn$n.log" 2>&1 &
  PIDS="$PIDS $!"
done
"$BIN" serve --role coord --etcd "$URL" --node-name coord1 --listen "127.0.0.1:$COORD_PORT" \
  --data "$DIR/coord1" >"$DIR/coord1.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until [ "$(curl -s "http://127.0.0.1:$COORD_PORT/_cat/nodes" 2>/dev/null | wc -l)" -ge 4 ]; do
  i=$((i + 1)); [ $i -lt 300 ] || { echo "the cluster did not form: logs in $DIR" >&2; stop; exit 1; }
  sleep 0.1
done
curl -s "http://127.0.0.1:$COORD_PORT/_cat/nodes?v"
echo "cluster up: coordinator http://127.0.0.1:$COORD_PORT, etcd $URL, logs in $DIR (Ctrl-C stops)"
wait
