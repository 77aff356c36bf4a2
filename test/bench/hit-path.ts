/**
 * A disk hit's work in this process, without a socket: the quick front's head reader, then
 * EdgePipeline.fastHit (cache key, store lookup: the index record, one pread of the packed body and
 * its checks, the read noted, the hit's header record) and the lent bytes given back, for one
 * 50 KiB object kept out of memory (`memory.maxEntrySize: 1KiB`). Run on a single-process edge and
 * on a cluster worker beside its shield (test/support/edge.ts: both in this process). Prints CPU
 * per hit over `--rounds` rounds of `--hits` (median and range, after a warm-up round): what the
 * edge's own code costs a disk hit, apart from the socket's read and write, which dominate a hit
 * under wrk (test/bench/disk.ts) and make that measure noisy on a shared machine.
 *
 *   npm run build && node dist/test/bench/hit-path.js [--hits 20000] [--rounds 9] [--size 51200]
 *
 * A/B: copy the compiled file next to another build's dist/test/bench/ and run it there: it
 * measures the build it sits in.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { readHead } from '../../src/serve/quick-head.js';
import { startTestEdge, type Topology } from '../support/edge.js';
import { objectBody } from './counting-origin.js';
import { describeRounds, measureRound, type OpRound } from './op-rounds.js';

const { values } = parseArgs({
  options: {
    hits: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '9' },
    size: { type: 'string', default: '51200' },
  },
});
const hits = Number(values.hits);
const rounds = Number(values.rounds);
const path = `/h/1-${Number(values.size)}.bin`;
const body = objectBody(path)!;

const origin = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'cache-control': 'public, max-age=86400', etag: '"v1"' });
  res.end(body);
});
await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
const upstream = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;

/** Rounds of `hits` disk hits on an edge of `topology`; every answer is checked to be the object's bytes. */
async function measure(topology: Topology): Promise<OpRound[]> {
  const edge = await startTestEdge(upstream, { memory: { maxEntrySize: '1KiB' } }, { topology });
  try {
    for (let i = 0; i < 3; i++) if (!(await edge.get(path)).body.equals(body)) throw new Error('wrong body');
    const head = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${edge.url.slice('http://'.length)}\r\nUser-Agent: wrk\r\n\r\n`, 'latin1');
    const inputs = Array.from({ length: hits }, () => head);
    const hit = (bytes: Buffer): number => {
      const request = readHead(bytes, 0)!.request;
      const result = edge.server.pipeline.fastHit(request);
      const data = result?.reply.body;
      if (!Buffer.isBuffer(data) || data.length !== body.length || data[100] !== body[100]) throw new Error('not a disk hit with the body');
      result!.reply.release?.();
      return data.length;
    };
    const out: OpRound[] = [];
    for (let round = 0; round <= rounds; round++) {
      const r = measureRound(inputs, hit);
      if (round > 0) out.push(r); // the first warms the code up
    }
    return out;
  } finally {
    await edge.destroy();
  }
}

for (const topology of ['single', 'workers'] as const) {
  const rs = await measure(topology);
  console.log(describeRounds(topology === 'single' ? 'one process' : 'cluster worker', rs, { per: 'hit', unit: 'ns', wall: true }));
}
origin.close();
