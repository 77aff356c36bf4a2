/**
 * The benchmarks' bare-Node reference (test/bench/hit-reference.ts, run from dist/ as bench:edge
 * runs it) with `--fields`: over HTTP/1.1 and over HTTP/2 (TLS), every answer carries exactly the
 * fields of the file, with Content-Length from the file served and Date added by Node; without
 * `--fields`, its own five.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, type TestCa } from '../../support/certs.js';
import { h2request, h2session } from '../../support/https-clients.js';
import { exited } from '../../support/process.js';

const SCRIPT = fileURLToPath(new URL('../../../dist/test/bench/hit-reference.js', import.meta.url));
const FIELDS = {
  'accept-ranges': 'bytes',
  'cache-control': 'public, max-age=3600',
  'content-type': 'application/octet-stream',
  etag: '"abc"',
  'x-served-by': 'bench/edge',
  'content-length': '999', // replaced by the served file's length
  'cache-status': 'anycdn; hit; ttl=3599',
  age: '1',
  'server-timing': 'cdn-cache;desc=hit',
};
const BODY = Buffer.alloc(1024, 7);

let dir: string;
let ca: TestCa;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anycdn-hit-reference-'));
  await writeFile(join(dir, 'obj-1k.bin'), BODY);
  await writeFile(join(dir, 'fields.json'), JSON.stringify(FIELDS));
  ca = await testCa();
});
afterAll(async () => {
  for (const child of children) {
    child.kill('SIGTERM');
    await exited(child);
  }
  await ca.remove();
  await rm(dir, { recursive: true, force: true });
});

async function reference(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [SCRIPT, '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`hit-reference exited (${code})`)));
  });
  return (JSON.parse(first) as { url: string }).url;
}

describe.skipIf(!existsSync(SCRIPT))('hit-reference --fields', () => {
  it('answers over HTTP/1.1 with exactly the given fields, the length of the file and a Date', async () => {
    const url = await reference(['--fields', join(dir, 'fields.json')]);
    const res = await fetch(`${url}/bench/obj-1k.bin`);
    const fields = Object.fromEntries(res.headers);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(BODY);
    expect(fields['date']).toMatch(/ GMT$/);
    delete fields['date'];
    // What Node's HTTP/1.1 server adds to every keep-alive answer.
    delete fields['connection'];
    delete fields['keep-alive'];
    expect(fields).toEqual({ ...FIELDS, 'content-length': '1024' });
  });

  it('answers over HTTP/2 with exactly the given fields, the length of the file and a Date', async () => {
    const pair = await ca.issue('ref', ['localhost', 'IP:127.0.0.1']);
    const url = await reference(['--fields', join(dir, 'fields.json'), '--tls-cert', pair.cert, '--tls-key', pair.key, '--protocol', 'h2']);
    const session = await h2session(url, { ca: await readFile(ca.caFile) });
    try {
      const res = await h2request(session, '/bench/obj-1k.bin');
      expect(res.status).toBe(200);
      expect(res.body).toEqual(BODY);
      // Own string-keyed fields only (Node's client adds a symbol for never-indexed fields).
      const { date, ...fields } = Object.fromEntries(Object.entries(res.headers));
      expect(date).toMatch(/ GMT$/);
      expect(fields).toEqual({ ...FIELDS, 'content-length': '1024' });
    } finally {
      session.close();
    }
  });

  it('without --fields, answers with its own five fields', async () => {
    const url = await reference([]);
    const res = await fetch(`${url}/bench/obj-1k.bin`);
    await res.arrayBuffer();
    expect([...res.headers.keys()].filter((name) => !['date', 'connection', 'keep-alive'].includes(name)).sort()).toEqual(['cache-control', 'content-length', 'content-type', 'etag', 'last-modified']);
  });
});
