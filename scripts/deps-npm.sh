#!/bin/sh
# deps-npm.sh: install the npm packages the UDF examples build with (DESIGN.md §3: AssemblyScript
# comes from the npm registry) into DIR/node_modules, only when missing, so a second run costs a
# file test. Nothing is installed globally or into the source tree.
# Usage: deps-npm.sh [DIR]   (default: <repo>/build/npm; prints DIR/node_modules/.bin/asc)
set -e
# AssemblyScript 0.28 needs node >= 20; Debian 12's nodejs is 18, which 0.27 supports.
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$NODE_MAJOR" -ge 20 ]; then DEFAULT_ASC=0.28.20; else DEFAULT_ASC=0.27.37; fi
ASC_VERSION="${QD_ASC_VERSION:-$DEFAULT_ASC}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR="${1:-$ROOT/build/npm}"
ASC="$DIR/node_modules/.bin/asc"
STAMP="$DIR/.assemblyscript-$ASC_VERSION"
if [ -x "$ASC" ] && [ -f "$STAMP" ]; then echo "$ASC"; exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
  echo "deps-npm: npm not found (apt-get install npm); AssemblyScript examples cannot be built" >&2
  exit 1
fi
mkdir -p "$DIR"
# A package.json of our own keeps npm from walking up into the repository.
[ -f "$DIR/package.json" ] || printf '{ "name": "quidditch-build-npm", "private": true }\n' >"$DIR/package.json"
echo "deps-npm: installing assemblyscript@$ASC_VERSION into $DIR" >&2
(cd "$DIR" && npm install --no-save --no-audit --no-fund --loglevel=error \
   "assemblyscript@$ASC_VERSION" >&2)
[ -x "$ASC" ] || { echo "deps-npm: $ASC missing after npm install" >&2; exit 1; }
touch "$STAMP"
echo "$ASC"
