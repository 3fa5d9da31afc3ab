// test_examples.mjs: checks the example UDFs (examples/udfs) against the UDF ABI v1
// (docs/udf-authoring.md) on node's WebAssembly engine, which shares no code with ours.
// Usage: node test_examples.mjs <build>/examples/udfs [<path>/sdk_batch.c.wasm]
// The folder's examples.txt lists "<name> <lang> <file>" for every module the build made; a
// language whose toolchain was missing is reported as skipped, a listed file that is missing
// fails. Prints one line per check and closes with "N passed, N failed".
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node test_examples.mjs <build>/examples/udfs");
  process.exit(2);
}

let passed = 0, failed = 0, skipped = 0;
function ok(cond, what, detail = "") {
  if (cond) { passed++; console.log(`ok      ${what}`); }
  else { failed++; console.log(`FAILED  ${what}${detail ? ": " + detail : ""}`); }
  return cond;
}
function skip(what, why) { skipped++; console.log(`skip    ${what}: ${why}`); }

// ---- The built modules -----------------------------------------------------------------------

const listFile = join(dir, "examples.txt");
if (!existsSync(listFile)) {
  console.log(`FAILED  ${listFile} not found: build the udf_examples target first`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const built = {}; // name -> { lang -> file }
for (const line of readFileSync(listFile, "utf8").split("\n")) {
  const [name, lang, file] = line.trim().split(/\s+/);
  if (!file) continue;
  (built[name] ??= {})[lang] = join(dir, file);
}
const LANGS = ["c", "rust", "as", "wat"];

// ---- A small reader of the binary format, independent of V8: imports and export signatures ----

function parseModule(bytes) {
  let p = 8;
  const u32 = () => {
    let r = 0, shift = 0, b;
    do { b = bytes[p++]; r |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80);
    return r >>> 0;
  };
  const name = () => { const n = u32(); const s = Buffer.from(bytes.subarray(p, p + n)).toString("utf8"); p += n; return s; };
  const VT = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };
  const types = [], imports = [], funcTypes = [], exports = [];
  let importedFuncs = 0;
  while (p < bytes.length) {
    const id = bytes[p++], size = u32(), end = p + size;
    if (id === 1) {
      for (let n = u32(); n--;) {
        p++; // 0x60
        const params = []; for (let k = u32(); k--;) params.push(VT[bytes[p++]]);
        const results = []; for (let k = u32(); k--;) results.push(VT[bytes[p++]]);
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = u32(); n--;) {
        const module = name(), field = name(), kind = bytes[p++];
        if (kind === 0) { funcTypes.push(u32()); importedFuncs++; }
        else if (kind === 1) { p++; const f = bytes[p++]; u32(); if (f & 1) u32(); }
        else if (kind === 2) { const f = bytes[p++]; u32(); if (f & 1) u32(); }
        else if (kind === 3) { p += 2; }
        imports.push({ module, field, kind });
      }
    } else if (id === 3) {
      for (let n = u32(); n--;) funcTypes.push(u32());
    } else if (id === 7) {
      for (let n = u32(); n--;) {
        const field = name(), kind = bytes[p++], index = u32();
        exports.push({ field, kind, type: kind === 0 ? types[funcTypes[index]] : null });
      }
    }
    p = end;
  }
  return { imports, exports, importedFuncs };
}

// ---- Loading --------------------------------------------------------------------------------

// WASI imports, should a module have any: every call fails with ENOSYS (52), as our sandbox does
// for what it does not provide. None of the examples should need them.
function wasiStubs(module) {
  const obj = {};
  for (const imp of WebAssembly.Module.imports(module))
    if (imp.module === "wasi_snapshot_preview1" && imp.kind === "function")
      obj[imp.name] = () => 52;
  return { wasi_snapshot_preview1: obj };
}

const cache = new Map();
function load(file) {
  if (cache.has(file)) return cache.get(file);
  const bytes = readFileSync(file);
  const module = new WebAssembly.Module(bytes);
  const inst = new WebAssembly.Instance(module, wasiStubs(module));
  if (inst.exports._initialize) inst.exports._initialize(); // WASI reactor convention
  const r = { bytes, module, inst, x: inst.exports, info: parseModule(new Uint8Array(bytes)) };
  cache.set(file, r);
  return r;
}

// ---- Host side of the ABI: strings and batch columns ------------------------------------------

const enc = new TextEncoder(), dec = new TextDecoder("utf-8", { fatal: true });
function putBytes(m, bytes) {
  const p = m.x.qd_alloc(bytes.length);
  if (p === 0 && bytes.length) throw new Error("qd_alloc returned 0");
  new Uint8Array(m.x.memory.buffer, p, bytes.length).set(bytes);
  return p;
}
function putString(m, s) { const b = enc.encode(s); return [putBytes(m, b), b.length]; }
function getString(m, packed) {
  const v = BigInt.asUintN(64, packed);
  if (v === 0xffffffffffffffffn) return null;
  const ptr = Number(v >> 32n), len = Number(v & 0xffffffffn);
  if (ptr + len > m.x.memory.buffer.byteLength) throw new Error(`string result out of bounds: ${ptr}+${len}`);
  return dec.decode(new Uint8Array(m.x.memory.buffer, ptr, len).slice());
}
const SIZE = { i32: 4, f32: 4, i64: 8, f64: 8, string: 8 };
// Calls <name>__batch over the rows (arrays of JS values, strings as JS strings); returns results.
function callBatch(m, fn, types, ret, rows) {
  const n = rows.length;
  m.x.qd_reset();
  const argv = m.x.qd_alloc(4 * types.length);
  const cols = types.map((t, j) => {
    const col = m.x.qd_alloc(SIZE[t] * n);
    for (let i = 0; i < n; i++) {
      const v = rows[i][j];
      if (t === "string") {
        const [ptr, len] = putString(m, v);
        const dv = new DataView(m.x.memory.buffer);
        dv.setUint32(col + 8 * i, ptr, true); dv.setUint32(col + 8 * i + 4, len, true);
      } else {
        const dv = new DataView(m.x.memory.buffer);
        if (t === "i32") dv.setInt32(col + 4 * i, v, true);
        else if (t === "f32") dv.setFloat32(col + 4 * i, v, true);
        else if (t === "i64") dv.setBigInt64(col + 8 * i, BigInt(v), true);
        else dv.setFloat64(col + 8 * i, v, true);
      }
    }
    return col;
  });
  const out = m.x.qd_alloc(SIZE[ret] * n);
  cols.forEach((c, j) => new DataView(m.x.memory.buffer).setUint32(argv + 4 * j, c, true));
  m.x[fn + "__batch"](n, argv, out);
  const dv = new DataView(m.x.memory.buffer), res = [];
  for (let i = 0; i < n; i++) {
    if (ret === "i32") res.push(dv.getInt32(out + 4 * i, true));
    else if (ret === "f32") res.push(dv.getFloat32(out + 4 * i, true));
    else if (ret === "i64") res.push(dv.getBigInt64(out + 8 * i, true));
    else if (ret === "string") res.push(getString(m, dv.getBigInt64(out + 8 * i, true)));
    else res.push(dv.getFloat64(out + 8 * i, true));
  }
  return res;
}

// Bit-level equality for f64 (NaNs only need to both be NaN: payloads are not portable).
const f64bits = (x) => { const b = new DataView(new ArrayBuffer(8)); b.setFloat64(0, x); return b.getBigUint64(0); };
const same = (a, b) => (Number.isNaN(a) && Number.isNaN(b)) || f64bits(a) === f64bits(b);

// ---- Every module: imports, manifest, exports and signatures, allocator ----------------------

const WASM_PARAM = { i32: ["i32"], i64: ["i64"], f32: ["f32"], f64: ["f64"], string: ["i32", "i32"] };
const WASM_RESULT = { i32: "i32", i64: "i64", f32: "f32", f64: "f64", string: "i64" };
const manifests = {};
for (const name of Object.keys(built).sort()) {
  const mf = join(dir, `${name}.json`);
  let man = null;
  try { man = JSON.parse(readFileSync(mf, "utf8")); } catch (e) { ok(false, `${name}.json parses`, e.message); }
  if (man) {
    const kinds = ["score", "filter", "transform", "metric"];
    ok(man.name === name && typeof man.export === "string" && kinds.includes(man.kind) &&
       Array.isArray(man.params) && man.params.every((q) => q.name && WASM_PARAM[q.type]) &&
       WASM_RESULT[man.returns] && (man.kind !== "filter" || man.returns === "i32"),
       `${name}.json: manifest shape (DESIGN.md §5)`);
    manifests[name] = man;
  }
  for (const lang of LANGS) {
    const file = built[name][lang];
    if (!file) continue;
    const tag = `${name}.${lang}`;
    if (!ok(existsSync(file), `${tag}.wasm was built`)) { delete built[name][lang]; continue; }
    let m;
    try { m = load(file); } catch (e) {
      ok(false, `${tag}: compiles and instantiates`, e.message);
      delete built[name][lang];
      continue;
    }
    const bad = m.info.imports.filter((i) => i.module !== "wasi_snapshot_preview1");
    ok(bad.length === 0, `${tag}: imports nothing outside wasi_snapshot_preview1`,
       bad.map((i) => `${i.module}.${i.field}`).join(", "));
    if (man) {
      const exp = m.info.exports.find((e) => e.field === man.export && e.kind === 0);
      const want = { params: man.params.flatMap((q) => WASM_PARAM[q.type]), results: [WASM_RESULT[man.returns]] };
      ok(exp && JSON.stringify(exp.type) === JSON.stringify(want),
         `${tag}: exports ${man.export} with the manifest's signature`,
         `want ${JSON.stringify(want)}, got ${JSON.stringify(exp && exp.type)}`);
      const b = m.info.exports.find((e) => e.field === man.export + "__batch");
      if (b) ok(JSON.stringify(b.type) === JSON.stringify({ params: ["i32", "i32", "i32"], results: [] }),
                `${tag}: ${man.export}__batch has type (i32, i32, i32) -> ()`, JSON.stringify(b.type));
      const needsMemory = man.params.some((q) => q.type === "string") || man.returns === "string" || b;
      if (needsMemory)
        ok(m.x.memory instanceof WebAssembly.Memory && typeof m.x.qd_alloc === "function",
           `${tag}: exports memory and qd_alloc (string or batch arguments)`);
    }
    if (m.x.qd_abi_version) ok(m.x.qd_abi_version() === 1, `${tag}: qd_abi_version() is 1`);
    if (m.x.qd_alloc) checkAllocator(m, tag);
  }
}

function checkAllocator(m, tag) {
  const x = m.x;
  x.qd_reset && x.qd_reset();
  const sizes = [1, 0, 7, 8, 13, 100, 4096, 200000 /* beyond the 64 KiB arena */, 3, 1 << 20];
  const got = [];
  let good = x.qd_alloc(-1) === 0;
  for (const [k, n] of sizes.entries()) {
    const p = x.qd_alloc(n);
    if (p === 0 || p % 8 !== 0 || p + n > x.memory.buffer.byteLength) { good = false; break; }
    new Uint8Array(x.memory.buffer, p, n).fill(k + 1);
    got.push([p, n, k + 1]);
  }
  // every block still holds its own fill: no two overlap
  good = good && got.every(([p, n, v]) => new Uint8Array(x.memory.buffer, p, n).every((b) => b === v));
  ok(good, `${tag}: qd_alloc gives 8-byte-aligned, disjoint, in-bounds blocks (up to 1 MiB), 0 for len < 0`);
  if (x.qd_reset) {
    x.qd_reset();
    const a = x.qd_alloc(16);
    x.qd_reset();
    const b = x.qd_alloc(16);
    const pages = x.memory.buffer.byteLength;
    for (let r = 0; r < 50; r++) { x.qd_reset(); for (const n of sizes) x.qd_alloc(n); }
    ok(a === b && x.memory.buffer.byteLength === pages,
       `${tag}: qd_reset frees everything (same first block, no growth over 50 resets)`,
       `first ${a} vs ${b}, bytes ${pages} -> ${x.memory.buffer.byteLength}`);
    x.qd_reset();
  }
}

// ---- custom_score: four languages, bit-identical, equal to a reference ------------------------

function refCustomScore(bm25, boost, recencyDays, tier) {
  const days = recencyDays < 0 ? 0 : recencyDays;
  const recency = 1 + 1 / (1 + days / 30);
  const tb = tier === 1 ? 1.5 : tier === 2 ? 1.2 : tier === 3 ? 1.0 : 0.8;
  return bm25 * boost * recency * tb;
}
{
  const langs = LANGS.filter((l) => built.custom_score?.[l]);
  for (const l of LANGS) if (!langs.includes(l)) skip(`custom_score.${l}`, "not built (see the build's warnings)");
  const grid = [];
  for (const bm25 of [0, 1e-9, 0.5, 1, 3.7, 12.25, 123456.789, Infinity, NaN])
    for (const boost of [0, 1, 1.2, 2.5, -1, 1e300])
      for (const days of [-2147483648, -5, 0, 1, 7, 29, 30, 31, 365, 10000, 2147483647])
        for (const tier of [-1, 0, 1, 2, 3, 4, 100, 2147483647])
          grid.push([bm25, boost, days, tier]);
  for (const l of langs) {
    const m = load(built.custom_score[l]);
    let bad = null;
    for (const row of grid) {
      const got = m.x.custom_score(...row), want = refCustomScore(...row);
      if (!same(got, want)) { bad = `custom_score(${row}) = ${got}, want ${want}`; break; }
    }
    ok(!bad, `custom_score.${l}: equals the reference bit for bit on ${grid.length} inputs`, bad);
  }
  if (langs.length > 1) {
    let bad = null;
    const ms = langs.map((l) => load(built.custom_score[l]));
    for (const row of grid) {
      const rs = ms.map((m) => m.x.custom_score(...row));
      if (!rs.every((r) => same(r, rs[0]))) { bad = `custom_score(${row}): ${langs.map((l, i) => `${l}=${rs[i]}`).join(" ")}`; break; }
    }
    ok(!bad, `custom_score: ${langs.join(", ")} builds are bit-identical`, bad);
  }
  for (const l of langs) {
    const m = load(built.custom_score[l]);
    if (!m.x.custom_score__batch) { skip(`custom_score.${l} batch`, "no custom_score__batch export"); continue; }
    const res = callBatch(m, "custom_score", ["f64", "f64", "i32", "i32"], "f64", grid);
    const i = res.findIndex((r, k) => !same(r, refCustomScore(...grid[k])));
    ok(i < 0, `custom_score.${l}: custom_score__batch over ${grid.length} rows equals the scalar form`,
       i >= 0 && `row ${grid[i]}: ${res[i]}`);
    ok(callBatch(m, "custom_score", ["f64", "f64", "i32", "i32"], "f64", []).length === 0,
       `custom_score.${l}: custom_score__batch with n = 0 writes nothing`);
  }
}

// ---- in_stock_and_cheap: filter ----------------------------------------------------------------

{
  const rows = [];
  for (const stock of [-1n, 0n, 1n, 5n, 1n << 40n, -(1n << 63n), (1n << 63n) - 1n])
    for (const price of [0, 9.99, 10, 10.01, NaN, -Infinity, Infinity])
      for (const max of [10, 0, NaN])
        rows.push([stock, price, max]);
  const want = rows.map(([s, p, mx]) => (s > 0n && p <= mx ? 1 : 0));
  for (const l of LANGS) {
    const f = built.in_stock_and_cheap?.[l];
    if (!f) { if (l === "c" || l === "rust") skip(`in_stock_and_cheap.${l}`, "not built"); continue; }
    const m = load(f);
    const got = rows.map((r) => m.x.in_stock_and_cheap(...r));
    const i = got.findIndex((g, k) => g !== want[k]);
    ok(i < 0, `in_stock_and_cheap.${l}: keeps exactly stock > 0 && price <= max_price (${rows.length} rows)`,
       i >= 0 && `(${rows[i]}) = ${got[i]}`);
    if (m.x.in_stock_and_cheap__batch) {
      const b = callBatch(m, "in_stock_and_cheap", ["i64", "f64", "f64"], "i32", rows);
      const j = b.findIndex((g, k) => (g !== 0) !== (want[k] !== 0));
      ok(j < 0, `in_stock_and_cheap.${l}: batch form equals the scalar form`, j >= 0 && `row ${rows[j]}`);
    }
  }
}

// ---- title_slug: string transform ------------------------------------------------------------

function refSlug(s) { // on UTF-8 bytes, as title_slug.c describes
  const out = [];
  let dash = false;
  for (let c of enc.encode(s)) {
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (!(c >= 0x80 || (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a))) { dash = true; continue; }
    if (dash && out.length) out.push(0x2d);
    dash = false;
    out.push(c);
  }
  return dec.decode(new Uint8Array(out));
}
{
  const cases = [
    ["Hello, World!", "hello-world"],
    ["  Café Crème -- 2 Cups!  ", "café-crème-2-cups"],
    ["", ""], ["---", ""], ["ABC_def", "abc-def"], ["x", "x"],
    ["日本語 タイトル", "日本語-タイトル"], ["Rock 🎸 Roll", "rock-🎸-roll"],
    ["MiXeD   case\t\nLines", "mixed-case-lines"], ["a".repeat(100000), "a".repeat(100000)],
  ];
  ok(cases.every(([t, s]) => refSlug(t) === s), "title_slug: the reference gives the documented slugs");
  for (const l of LANGS) {
    const f = built.title_slug?.[l];
    if (!f) { if (l !== "wat") skip(`title_slug.${l}`, "not built"); continue; }
    const m = load(f);
    let bad = null;
    for (const [title, slug] of cases) {
      m.x.qd_reset();
      const [p, n] = putString(m, title);
      const got = getString(m, m.x.title_slug(p, n));
      if (got !== slug) { bad = `title_slug(${JSON.stringify(title.slice(0, 40))}) = ${JSON.stringify(got?.slice(0, 40))}, want ${JSON.stringify(slug.slice(0, 40))}`; break; }
    }
    ok(!bad, `title_slug.${l}: (ptr, len) UTF-8 in, packed (ptr << 32 | len) UTF-8 out, ${cases.length} cases`, bad);
    if (m.x.title_slug__batch) {
      const got = callBatch(m, "title_slug", ["string"], "string", cases.map(([t]) => [t]));
      const i = got.findIndex((g, k) => g !== cases[k][1]);
      ok(i < 0, `title_slug.${l}: batch form (string column in, packed strings out)`, i >= 0 && `row ${i}: ${got[i]}`);
    }
    m.x.qd_reset();
  }
}

// ---- title_upper: Rust std on wasm32-wasi (imports WASI, served here by ENOSYS stubs) ---------

{
  const f = built.title_upper?.rust;
  if (!f) skip("title_upper.rust", "not built (needs Rust's wasm32-wasi std)");
  else {
    const m = load(f);
    const cases = [["Crème brûlée", "CRÈME BRÛLÉE"], ["", ""], ["straße", "STRASSE"],
                   ["abc 123 xyz", "ABC 123 XYZ"], ["ωμέγα", "ΩΜΈΓΑ"], ["x".repeat(300000), "X".repeat(300000)]];
    let bad = null;
    for (const [t, want] of cases) {
      m.x.qd_reset();
      const [p, n] = putString(m, t);
      const got = getString(m, m.x.title_upper(p, n));
      if (got !== want) { bad = `title_upper(${JSON.stringify(t.slice(0, 20))}) = ${JSON.stringify(got?.slice(0, 20))}`; break; }
    }
    ok(!bad, `title_upper.rust: std's to_uppercase through the string ABI (${cases.length} cases, up to 300 KB)`, bad);
    m.x.qd_reset();
    const p = putBytes(m, new Uint8Array([0x61, 0xff, 0x62]));
    ok(getString(m, m.x.title_upper(p, 3)) === null, "title_upper.rust: bytes that are not UTF-8 give no value (-1)");
    const got = callBatch(m, "title_upper", ["string"], "string", cases.map(([t]) => [t]));
    ok(got.every((g, k) => g === cases[k][1]), "title_upper.rust: batch form");
    checkAllocator(m, "title_upper.rust (after std allocations)");
  }
}

// ---- margin: metric (built with wasi-libc) ----------------------------------------------------

{
  const f = built.margin?.c;
  if (!f) skip("margin.c", "not built (needs wasi-libc)");
  else {
    const m = load(f);
    const rows = [];
    for (const price of [100, 10, 1, 0.01, 0, -5, NaN, Infinity])
      for (const cost of [0, 5, 10, 150, -1]) rows.push([price, cost]);
    const ref = ([p, c]) => (!(p > 0) ? 0 : (p - c) / p);
    const i = rows.findIndex((r) => !same(m.x.margin(...r), ref(r)));
    ok(i < 0, `margin.c: (price - cost) / price, 0 when price <= 0 (${rows.length} rows)`, i >= 0 && `margin(${rows[i]}) = ${m.x.margin(...rows[i])}`);
    const b = callBatch(m, "margin", ["f64", "f64"], "f64", rows);
    ok(b.every((r, k) => same(r, ref(rows[k]))), "margin.c: batch form equals the scalar form");
    m.x.qd_reset();
    ok(m.x.margin_selftest(300000) === 1 && m.x.margin_selftest(3000000) === 1,
       "margin.c: wasi-libc malloc and qd_alloc coexist beyond the arena (blocks stay disjoint)");
    checkAllocator(m, "margin.c (after malloc)");
  }
}

// ---- trap_div: traps --------------------------------------------------------------------------

{
  const f = built.trap_div?.c;
  if (!f) skip("trap_div.c", "not built");
  else {
    const m = load(f);
    ok(m.x.trap_div(7, 2) === 3 && m.x.trap_div(-7, 2) === -3, "trap_div.c: divides when it can");
    const traps = (fn, re) => { try { fn(); return false; } catch (e) { return e instanceof WebAssembly.RuntimeError && re.test(e.message); } };
    ok(traps(() => m.x.trap_div(1, 0), /divide by zero/), "trap_div.c: trap_div(1, 0) traps (integer divide by zero)");
    ok(traps(() => m.x.trap_div(-2147483648, -1), /unrepresentable|overflow/),
       "trap_div.c: trap_div(INT32_MIN, -1) traps (integer overflow)");
    ok(m.x.trap_div(9, 3) === 3, "trap_div.c: the instance still works after a trap");
  }
}

// ---- infinite_loop: never returns ------------------------------------------------------------

{
  const f = built.infinite_loop?.wat;
  if (!f) skip("infinite_loop.wat", "not built");
  else {
    load(f); // compiles, imports checked above
    // Run spin() on a worker thread; V8 can terminate a worker even inside a wasm loop. The test
    // waits for the worker to report that it entered the call, then gives it a moment to (wrongly)
    // return; a correct module is still running and gets terminated.
    const src = `
      const { parentPort, workerData } = require("node:worker_threads");
      const inst = new WebAssembly.Instance(new WebAssembly.Module(workerData));
      parentPort.postMessage("entered");
      parentPort.postMessage("returned " + inst.exports.spin(1));`;
    const w = new Worker(src, { eval: true, workerData: readFileSync(f) });
    const msgs = [];
    await new Promise((resolve) => {
      w.on("message", (msg) => { msgs.push(msg); if (msg === "entered") setTimeout(resolve, 300); });
      w.on("error", (e) => { msgs.push("error " + e.message); resolve(); });
    });
    ok(msgs.length === 1 && msgs[0] === "entered", "infinite_loop.wat: spin(1) does not return", msgs.join("; "));
    await w.terminate();
  }
}

// ---- The C SDK's QD_BATCH: every arity (1..8) and type token --------------------------------

{
  const f = process.argv[3];
  if (!f) skip("sdk_batch.c", "not built (no clang)");
  else if (ok(existsSync(f), "sdk_batch.c.wasm was built")) {
    const m = load(f);
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / (1 << 24); // [0, 1)
    const gen = {
      i32: () => Math.floor(rnd() * 2000) - 1000,
      i64: () => BigInt(Math.floor(rnd() * 2e6) - 1e6),
      f32: () => Math.fround(rnd() * 100 - 50),
      f64: () => rnd() * 1e6 - 5e5,
      string: () => { const n = Math.floor(rnd() * (rnd() < 0.1 ? 5000 : 12)); let s = ""; for (let i = 0; i < n; i++) s += "aé€😀z-"[Math.floor(rnd() * 6)]; return s; },
    };
    const sigs = {
      f1: [["i32"], "f64"], f2: [["f32", "i64"], "f32"], f3: [["i64", "i32", "string"], "i64"],
      f4: [["i32", "i32", "i32", "i32"], "i32"], f5: [["f64", "f32", "i64", "i32", "f64"], "f64"],
      f6: [["f64", "f64", "f64", "f64", "f64", "f64"], "f64"],
      f7: [["i32", "i64", "i32", "i64", "i32", "i64", "i32"], "i64"],
      f8: [["string", "i32", "i32", "i32", "i32", "i32", "i32", "string"], "string"],
    };
    for (const [fn, [types, ret]] of Object.entries(sigs)) {
      const rows = Array.from({ length: 257 }, () => types.map((t) => gen[t]()));
      const scalar = rows.map((r) => {
        m.x.qd_reset();
        const args = r.flatMap((v, j) => (types[j] === "string" ? putString(m, v) : [v]));
        const v = m.x[fn](...args);
        return ret === "string" ? getString(m, v) : v;
      });
      const batch = callBatch(m, fn, types, ret, rows);
      const i = batch.findIndex((b, k) => !(typeof b === "number" ? same(b, scalar[k]) : b === scalar[k]));
      ok(i < 0 && new Set(batch.map(String)).size > 1,
         `sdk_batch.c: QD_BATCH(${fn}, ${ret}, ${types.join(", ")}) equals the scalar calls on ${rows.length} rows`,
         i >= 0 && `row ${i}: batch ${batch[i]} scalar ${scalar[i]}`);
    }
  }
}

console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : skipped ? 77 : 0); // 77: CTest reports it skipped, never passed
