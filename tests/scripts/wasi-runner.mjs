#!/usr/bin/env node
// Cargo runner for wasm32-wasip1: `tests/scripts/wasi-runner.mjs FILE.wasm ARGS...`.
// Runs the module under Node's built-in WASI (preview1). The current directory and
// the file system root are preopened under their own names, so both relative paths
// and the absolute CARGO_MANIFEST_DIR paths that tests build resolve as on the host.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [file, ...args] = process.argv.slice(2);
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env: process.env,
  preopens: { '.': '.', '/': '/' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
