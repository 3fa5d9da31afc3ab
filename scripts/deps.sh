#!/bin/sh
# deps.sh: install the Debian packages Quidditch builds and tests with (DESIGN.md §3).
# Skips what is already installed, so a second run costs a dpkg query. Usage: deps.sh [build|test|all]
set -e
BUILD="cmake make gcc pkg-config libjansson-dev libsqlite3-dev libmicrohttpd-dev libcurl4-openssl-dev libsodium-dev llvm-19-dev libstemmer-dev"
TEST="libcmocka-dev wabt binaryen clang-19 lld-19 libclang-rt-19-dev libclang-rt-19-dev-wasm32 wasi-libc nodejs wamerican libxapian-dev rustc libstd-rust-dev-wasm32 python3 python3-elasticsearch curl wrk prometheus etcd-server"
case "${1:-all}" in
  build) WANT="$BUILD" ;;
  test|all) WANT="$BUILD $TEST" ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
MISSING=""
for p in $WANT; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    MISSING="$MISSING $p"
  fi
done
# npm comes with nodesource's nodejs; Debian's npm package conflicts with it, so ask for npm
# only when there is no npm at all.
if [ "${1:-all}" != build ] && ! command -v npm >/dev/null 2>&1; then MISSING="$MISSING npm"; fi
if [ -z "$MISSING" ]; then echo "deps: all packages present"; exit 0; fi
echo "deps: installing:$MISSING"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends $MISSING
