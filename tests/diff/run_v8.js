// run_v8.js: the V8 side of the differential test (tests/diff/difftest.py): node run_v8.js
// FILE... prints, for each module, exactly the lines diff_run.c prints for our tiers (see
// there): the same `fuzzing-support` imports, every exported function in export order with
// zero arguments after `hangLimitInitializer`, results and log values as unsigned bits, traps
// as a coarse class, and the exported memory's size and FNV-1a checksum.
'use strict';
const fs = require('fs');

const out = [];
const emit = (s) => out.push(s);

const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1), u64 = new BigUint64Array(f64.buffer);
const bitsF32 = (x) => { f32[0] = x; return String(u32[0]); };
const bitsF64 = (x) => { f64[0] = x; return String(u64[0]); };

function val(type, x) {
  switch (type) {
    case 'i32': return 'i32 ' + String(x >>> 0);
    case 'i64': return 'i64 ' + BigInt.asUintN(64, BigInt(x)).toString();
    case 'f32': return 'f32 ' + bitsF32(x);
    case 'f64': return 'f64 ' + bitsF64(x);
    default: return 'ref ' + (x === null || x === undefined ? 'null' : 'nonnull');
  }
}

// V8's trap wording -> diff_run.c's classes
function trapClass(e) {
  const m = String(e && e.message);
  if (e instanceof RangeError && /call stack/i.test(m)) return 'stack';
  if (!(e instanceof WebAssembly.RuntimeError)) return 'other';
  if (/unreachable/.test(m)) return 'unreachable';
  if (/by zero/.test(m)) return 'div0';
  if (/unrepresentable/.test(m)) return 'arith';
  if (/memory access out of bounds|out of bounds memory/.test(m)) return 'memory';
  if (/table|null function|signature mismatch|element/.test(m)) return 'table';
  if (/data segment/.test(m)) return 'memory';
  return 'other';
}

// The parameter and result types of each exported function, from the binary: the JS API does
// not give them, so the type, import and function sections are read here.
function signatures(bytes) {
  let p = 8;
  const leb = () => {
    let r = 0, s = 0, b;
    do { b = bytes[p++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80);
    return r >>> 0;
  };
  const tname = (b) => ({0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64'}[b] || 'ref');
  const types = [], funcs = [], exports = [];
  while (p < bytes.length) {
    const id = bytes[p++], size = leb(), end = p + size;
    if (id === 1) {
      for (let n = leb(), i = 0; i < n; i++) {
        p++; // 0x60
        const np = leb(), params = [];
        for (let j = 0; j < np; j++) params.push(tname(bytes[p++]));
        const nr = leb(), results = [];
        for (let j = 0; j < nr; j++) results.push(tname(bytes[p++]));
        types.push({params, results});
      }
    } else if (id === 2) {
      for (let n = leb(), i = 0; i < n; i++) {
        for (let k = 0; k < 2; k++) { const n = leb(); p += n; } // module, name (p += leb()
        // would add to p's value from before leb moved it)
        const kind = bytes[p++];
        if (kind === 0) funcs.push(leb());
        else if (kind === 1) { p++; const fl = leb(); leb(); if (fl & 1) leb(); }
        else if (kind === 2) { const fl = leb(); leb(); if (fl & 1) leb(); }
        else if (kind === 3) { p += 2; }
      }
    } else if (id === 3) {
      for (let n = leb(), i = 0; i < n; i++) funcs.push(leb());
    } else if (id === 7) {
      for (let n = leb(), i = 0; i < n; i++) {
        const len = leb();
        const name = Buffer.from(bytes.subarray(p, p + len)).toString('utf8');
        p += len;
        const kind = bytes[p++], idx = leb();
        exports.push({name, kind, idx});
      }
    }
    p = end;
  }
  return exports.filter((x) => x.kind === 0).map((x) => ({name: x.name, sig: types[funcs[x.idx]]}));
}

function fnv1a(u8) { // 32-bit FNV-1a, as diff_run.c
  let h = 0x811c9dc5;
  for (let i = 0; i < u8.length; i++) h = Math.imul(h ^ u8[i], 0x01000193) >>> 0;
  return String(h >>> 0);
}

function zero(t) { return t === 'i64' ? 0n : t === 'ref' ? null : 0; }

function runOne(file) {
  emit('module ' + file);
  const bytes = new Uint8Array(fs.readFileSync(file));
  let mod;
  try { mod = new WebAssembly.Module(bytes); } catch (e) { emit('invalid ' + e.message); return; }
  for (const imp of WebAssembly.Module.imports(mod)) {
    if (imp.module !== 'fuzzing-support' || !/^log-(i32|i64|f32|f64)$/.test(imp.name)) {
      emit('skip import ' + imp.module + '.' + imp.name);
      return;
    }
  }
  const imports = {'fuzzing-support': {
    'log-i32': (x) => emit('log ' + val('i32', x)),
    'log-i64': (x) => emit('log ' + val('i64', x)),
    'log-f32': (x) => emit('log ' + val('f32', x)),
    'log-f64': (x) => emit('log ' + val('f64', x)),
  }};
  let inst;
  try { inst = new WebAssembly.Instance(mod, imports); } catch (e) {
    emit('instantiate ' + trapClass(e));
    return;
  }
  const sigs = signatures(bytes);
  const call = (name, sig) => {
    try {
      let r = inst.exports[name](...sig.params.map(zero));
      if (sig.results.length === 1) r = [r];
      else if (sig.results.length === 0) r = [];
      emit(['result'].concat(sig.results.map((t, i) => val(t, r[i]))).join(' '));
    } catch (e) {
      emit('trap ' + trapClass(e) + '|' + (e && e.message));
    }
  };
  const hang = sigs.find((s) => s.name === 'hangLimitInitializer');
  for (const s of sigs) {
    if (hang) call(hang.name, hang.sig);
    emit('call ' + s.name);
    call(s.name, s.sig);
  }
  const mem = inst.exports.memory;
  if (mem instanceof WebAssembly.Memory) {
    const u8 = new Uint8Array(mem.buffer);
    emit('memory ' + (u8.length / 65536) + ' ' + fnv1a(u8));
  }
}

for (const f of process.argv.slice(2)) {
  try { runOne(f); } catch (e) { emit('skip runner: ' + e); }
}
process.stdout.write(out.join('\n') + (out.length ? '\n' : ''));
