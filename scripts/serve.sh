#!/bin/sh
# serve.sh: start the product on its embedded default (127.0.0.1:9200, ./data).
# Until the server binary exists, run the engine on an example so `make serve` shows life.
set -e
cd "$(dirname "$0")/.."
if [ -x build/quidditch ]; then
  exec build/quidditch serve "$@"
fi
echo "serve: build/quidditch is not built yet; running the engine on an example instead"
exec build/qwasm run build/examples/fib.wasm --invoke fib 20
