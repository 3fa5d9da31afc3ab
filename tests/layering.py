#!/usr/bin/env python3
"""layering.py: DESIGN.md §2 as a test (CTest `layering`). Usage: layering.py [ROOT]

Reads every file under ROOT/src/<layer>/ and every #include in it, quoted or <...>, with any
path (`../udf/udf.h`, `wasm/internal.h`, `<src/query/expr_int.h>`). An include that names a
file of the tree's src/ is checked against these rules:

  - a layer includes its own files freely, and of another layer only the PUBLIC headers: the
    ones its CMakeLists.txt lists in `qd_layer(<target> <headers...>)` (see the top-level
    CMakeLists.txt); internal.h, compile.h, expr_int.h ... stay in their folder;
  - a header BACKEND_ONLY reserves for some layers (wasm_backend.h: src/jit) only from those;
  - only layers above it in DESIGN §2's order (base, wasm, jit, udf, index, query, cluster,
    server, cli);
  - nothing of what its "knows nothing of" column names (KNOWS_NOTHING_OF below);
  - its CMakeLists.txt makes no folder of src/ an include path of other targets (no PUBLIC /
    INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}, no ${CMAKE_SOURCE_DIR}/src/<other layer>), and links
    no library of a layer it may not include (the same two rules; a layer's library is the
    target its qd_layer() line names), since linking one gives its public headers.

Includes that name no file of src/ (system and library headers) are not its business.
Prints every violation, one a line (`layering: FILE:LINE: ...`), then a count; exit 1 if any,
0 ("layering: ok") if none, 2 on a usage error. Standard library only.
"""
import os
import re
import sys

ORDER = ["base", "wasm", "jit", "udf", "index", "query", "cluster", "server", "cli"]

# DESIGN §2's "knows nothing of" column, in layers: search = index + query, HTTP = server,
# UDFs = udf, query syntax = query. Beyond the column (docs/architecture.md, "Dependency
# order"): index and query know nothing of WebAssembly (wasm, jit, udf); the server binds UDFs
# to queries (udf_script.c). base knows nothing of anything.
KNOWS_NOTHING_OF = {
    "base": set(ORDER) - {"base"},
    "wasm": {"udf", "index", "query", "cluster", "server", "cli"},
    "jit": {"udf", "index", "query", "cluster", "server", "cli"},
    "udf": {"index", "query", "cluster", "server", "cli"},
    "index": {"wasm", "jit", "udf", "query", "cluster", "server", "cli"},
    "query": {"wasm", "jit", "udf", "cluster", "server", "cli"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
QD_LAYER = re.compile(r'qd_layer\(\s*([^)]*)\)')
SOURCE_EXT = (".c", ".h", ".inc", ".def")


def strip_cmake_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


# Public headers meant for one layer below only: wasm_backend.h is the wasm layer's view for
# the native tier (src/jit); no other layer may include it.
BACKEND_ONLY = {"wasm": {"wasm_backend.h": {"jit"}}}


def public_headers(src, targets=None):
    """{layer: set of public header names} from the qd_layer() lines; fills TARGETS with
    {library target: layer}."""
    pub = {}
    for layer in sorted(os.listdir(src)):
        cm = os.path.join(src, layer, "CMakeLists.txt")
        if not os.path.isfile(cm):
            continue
        with open(cm, encoding="utf-8", errors="replace") as f:
            text = strip_cmake_comments(f.read())
        for m in QD_LAYER.finditer(text):
            words = m.group(1).split()
            pub.setdefault(layer, set()).update(words[1:])
            if targets is not None and words:
                targets[words[0]] = layer
    return pub


def forbidden(layer, other):
    """Why LAYER may not use OTHER (another layer of ORDER), or None."""
    if other in KNOWS_NOTHING_OF.get(layer, set()):
        return f"{layer} knows nothing of {other}"
    if ORDER.index(other) > ORDER.index(layer):
        return f"{other} is below {layer} in DESIGN §2's order"
    return None


def cmake_violations(src, layer, out, targets):
    """A layer's CMakeLists.txt must not publish a folder of src/ as an include path."""
    cm = os.path.join(src, layer, "CMakeLists.txt")
    if not os.path.isfile(cm):
        return
    rel = os.path.relpath(cm, os.path.dirname(src))
    with open(cm, encoding="utf-8", errors="replace") as f:
        text = strip_cmake_comments(f.read())
    for m in re.finditer(r'\b(target_include_directories|include_directories)\s*\(([^)]*)\)', text):
        line = text.count("\n", 0, m.start()) + 1
        scope = "PRIVATE" if m.group(1) == "target_include_directories" else "DIRECTORY"
        for word in m.group(2).split():
            if word in ("PUBLIC", "PRIVATE", "INTERFACE", "SYSTEM", "BEFORE", "AFTER"):
                scope = word if word in ("PUBLIC", "PRIVATE", "INTERFACE") else scope
                continue
            other = re.match(r'\$\{CMAKE_SOURCE_DIR\}/src/([A-Za-z0-9_]+)', word)
            if other and other.group(1) != layer:
                out.append(f"{rel}:{line}: {word} is another layer's folder as an include path "
                           "(link its library instead: its public headers come with it)")
            elif word.startswith(("${CMAKE_CURRENT_SOURCE_DIR}", "${CMAKE_CURRENT_LIST_DIR}")) \
                    and scope in ("PUBLIC", "INTERFACE"):
                out.append(f"{rel}:{line}: {scope} {word} makes the folder an include path of "
                           f"other layers (use qd_layer({'<target>'} <public headers>))")
    for m in re.finditer(r'\btarget_link_libraries\s*\(([^)]*)\)', text):
        line = text.count("\n", 0, m.start()) + 1
        for word in m.group(1).split()[1:]:
            other = targets.get(word)
            if not other or other == layer or other not in ORDER:
                continue
            why = forbidden(layer, other)
            if why:
                out.append(f"{rel}:{line}: links {word} (src/{other}): {why}")


def resolve(root, src, here, kind, name, layer_files):
    """The tree path (relative to src/, e.g. 'udf/udf.h') an include names, or None."""
    cands = []
    if kind == '"':
        cands.append(os.path.normpath(os.path.join(here, name)))
    # a path with a folder: relative to src/ or to the root (<wasm/internal.h>, <src/x/y.h>)
    cands.append(os.path.normpath(os.path.join(src, name)))
    cands.append(os.path.normpath(os.path.join(root, name)))
    if kind == '<':  # the layer's own folder is one of its include paths
        cands.append(os.path.normpath(os.path.join(here, name)))
    for c in cands:
        if os.path.isfile(c):
            r = os.path.relpath(c, src)
            return None if r.startswith("..") else r
    # a bare name found through an include path: whichever layer folder has it
    base = os.path.basename(name)
    if base != name:
        return None
    owners = sorted(l for l, files in layer_files.items() if base in files)
    if not owners:
        return None
    return owners[0] + "/" + base if len(owners) == 1 else "?/" + base + ":" + ",".join(owners)


def main(argv):
    if len(argv) > 2:
        print("usage: layering.py [ROOT]", file=sys.stderr)
        return 2
    root = os.path.abspath(argv[1] if len(argv) == 2 else
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    src = os.path.join(root, "src")
    if not os.path.isdir(src):
        print(f"layering: {src} is not a folder", file=sys.stderr)
        return 2
    layers = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    layer_files = {l: set(os.listdir(os.path.join(src, l))) for l in layers}
    targets = {}
    pub = public_headers(src, targets)
    out = []
    for layer in layers:
        if layer not in ORDER:
            out.append(f"src/{layer}/: not a layer of DESIGN §2 ({' '.join(ORDER)})")
            continue
        cmake_violations(src, layer, out, targets)
        for fname in sorted(layer_files[layer]):
            path = os.path.join(src, layer, fname)
            if not fname.endswith(SOURCE_EXT) or not os.path.isfile(path):
                continue
            rel = f"src/{layer}/{fname}"
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
            for n, text in enumerate(lines, 1):
                m = INCLUDE.match(text)
                if not m:
                    continue
                kind, name = m.group(1), m.group(2).strip()
                shown = f"{kind}{name}{'>' if kind == '<' else kind}"
                target = resolve(root, src, os.path.dirname(path), kind, name, layer_files)
                if target is None:
                    continue
                if target.startswith("?/"):
                    owners = target.split(":", 1)[1].split(",")
                    if layer in owners:
                        continue  # its own folder comes first
                    out.append(f"{rel}:{n}: {shown} is a header of {', '.join(owners)}: "
                               "ambiguous, and none of them is this layer")
                    continue
                other, header = target.split("/", 1)
                if other == layer:
                    continue
                why = []
                if other not in ORDER:
                    why.append(f"src/{other} is not a layer of DESIGN §2")
                else:
                    if header not in pub.get(other, set()):
                        why.append(f"not a public header of {other} (public: "
                                   f"{', '.join(sorted(pub.get(other, []))) or 'none'})")
                    if header in BACKEND_ONLY.get(other, {}) and \
                            layer not in BACKEND_ONLY[other][header]:
                        why.append(f"{header} is {other}'s surface for "
                                   f"{', '.join(sorted(BACKEND_ONLY[other][header]))} only")
                    rule = forbidden(layer, other)
                    if rule:
                        why.append(rule)
                if why:
                    out.append(f"{rel}:{n}: {shown} (src/{target}): {'; '.join(why)}")
    for line in out:
        print("layering: " + line)
    if out:
        print(f"layering: {len(out)} violation{'s' if len(out) != 1 else ''}")
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
