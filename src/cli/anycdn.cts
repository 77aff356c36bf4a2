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
import nodeModule from 'node:module';
import os from 'node:os';

// The origin's default transform concurrency (cores + min(cores, 4), origin/config.ts) plus 2
// threads for file I/O, and no more: the pool hands each job to a thread that has been idle (seen:
// equal CPU time on every pool thread), so idle threads are not free. On the 2-core reference
// machine, JPEG at 2 requests in flight ran at 94.9 ops/s with 8 threads, 97.3 with 6 and 96.4
// with 4 (medians of 5 runs of 10 s).
const cores = os.availableParallelism();
process.env.UV_THREADPOOL_SIZE ??= String(cores + Math.min(cores, 4) + 2);
// V8's compiled code of anycdn's modules and its dependencies is kept on disk between starts
// (Node 22.1 and later; NODE_COMPILE_CACHE names the folder, the default is under the temp
// folder, NODE_DISABLE_COMPILE_CACHE=1 turns it off): a start then compiles nothing it compiled
// before, which every process of an edge with `workers: N` would otherwise do again. Older Node
// has no such call; a cache it cannot write only costs the start its benefit.
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();
void import('./main.js');
