#!/bin/sh
# layering.sh: DESIGN.md §2 as a test. Each layer may include only its own headers, the public
# header of the layers above it in the table, and system/library headers; internal.h never
# leaves its folder. Exit 1 naming every violation.
cd "${1:-$(dirname "$0")/..}" || exit 2
order="base wasm jit udf index query cluster server cli"
fail=0
pos() { i=0; for l in $order; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i+1)); done; echo -1; }
# What each layer must know nothing of (besides the ordering rule).
forbidden() {
  case "$1" in
    wasm|jit) echo "udf index query cluster server" ;;
    udf) echo "index query cluster server" ;;
    index) echo "wasm jit udf query cluster server" ;;
    query) echo "wasm jit udf cluster server" ;;
    *) echo "" ;;
  esac
}
for dir in src/*/; do
  layer=$(basename "$dir")
  me=$(pos "$layer")
  [ "$me" = -1 ] && continue
  for f in "$dir"*.c "$dir"*.h "$dir"*.inc; do
    [ -f "$f" ] || continue
    grep -o '#include "[^"]*"' "$f" | sed 's/#include "\(.*\)"/\1/' | while read -r inc; do
      base=$(basename "$inc")
      case "$inc" in
        */*) other=$(echo "$inc" | sed 's#.*src/##; s#/.*##; s#^\.\./##; s#/.*##') ;;
        *) other="" ;;
      esac
      # a bare include: own folder, base.h/compiler.h, or another layer's public header
      if [ -z "$other" ]; then
        [ -f "$dir$base" ] && continue
        case "$base" in base.h|compiler.h) continue ;; esac
        other=$(echo "$base" | sed 's/\.h$//')
      fi
      # wasm_backend.h is the wasm layer's surface for the native tier only
      if [ "$base" = wasm_backend.h ] && [ "$layer" != wasm ] && [ "$layer" != jit ]; then
        echo "layering: $f includes wasm_backend.h (only src/jit may)"; exit 1
      fi
      if [ "$base" = internal.h ] && [ "$other" != "$layer" ]; then
        echo "layering: $f includes another layer's internal.h ($inc)"; exit 1
      fi
      op=$(pos "$other")
      [ "$op" = -1 ] && continue
      for bad in $(forbidden "$layer"); do
        if [ "$bad" = "$other" ]; then echo "layering: $f ($layer) includes $inc ($other)"; exit 1; fi
      done
      if [ "$op" -gt "$me" ]; then echo "layering: $f ($layer) includes $inc from a lower layer ($other)"; exit 1; fi
    done || fail=1
  done
done
[ $fail = 0 ] && echo "layering: ok"
exit $fail
