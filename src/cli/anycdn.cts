#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node
/**
 * The `anycdn` executable: sizes libuv's thread pool, then runs the command (main.ts).
 *
 * sharp runs each transform on one of libuv's pool threads, the same threads that do Node's file
 * I/O, and the pool has 4 by default: with `images.concurrency` transforms running, only 4 minus
 * that many threads are left for reading sources, looking up variants and storing them, so every
 * file access waits behind a whole transform. The pool is sized when first used and Node already
 * uses it to load an ES module entry point, which is why this file is CommonJS and sets the
 * variable before loading anything else. An operator's own UV_THREADPOOL_SIZE is kept.
 *
 * MALLOC_ARENA_MAX=2 (the interpreter line) keeps glibc from fragmenting memory across many
 * arenas under concurrent sharp work; see README "Memory".
 */
import os from 'node:os';

// 2 threads per core cover the origin's default transform concurrency (at most 2 per core,
// origin/config.ts), and 4 more are left for file I/O.
process.env.UV_THREADPOOL_SIZE ??= String(2 * os.availableParallelism() + 4);
void import('./main.js');
