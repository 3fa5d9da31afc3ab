// run_v8.mjs: the V8 reference for bench_interp.c. Loads FILE.wasm (compile and instantiate
// outside the timing), optionally calls an init export once, then calls EXPORT with ARGS
// 1 + RUNS times (the first is the warm-up, which also lets V8 tier up from Liftoff to
// TurboFan) and prints one line per timed run:  `time SECONDS result VALUE`.
//   node run_v8.mjs FILE.wasm RUNS [--init NAME] EXPORT ARGS...
import { readFileSync } from 'node:fs';

const argv = process.argv.slice(2);
if (argv.length < 3) {
  console.error('usage: node run_v8.mjs FILE.wasm RUNS [--init NAME] EXPORT ARGS...');
  process.exit(2);
}
const file = argv.shift();
const runs = Number(argv.shift());
let init = null;
if (argv[0] === '--init') { argv.shift(); init = argv.shift(); }
const name = argv.shift();
const args = argv.map(Number);

const { instance } = await WebAssembly.instantiate(readFileSync(file), {});
const f = instance.exports[name];
if (typeof f !== 'function') { console.error(`no export ${name}`); process.exit(1); }
if (init) instance.exports[init]();
let r = f(...args); // warm-up
for (let i = 0; i < runs; i++) {
  const t0 = process.hrtime.bigint();
  r = f(...args);
  const t1 = process.hrtime.bigint();
  console.log(`time ${Number(t1 - t0) / 1e9} result ${r}`);
}
