/**
 * Hostile and odd inputs found in review of the origin: request targets that aliased or slipped
 * past the path rules, animated outputs far larger than their source, an original replaced while it is
 * being served, and a folder upload with a file that cannot be an asset. Each must end in a clear
 * answer, never a wrong asset, a hang or mixed bytes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { FsAssetStore } from '../../../origin/store/fs-asset-store.js';
import { CLI, cliBuilt } from '../../support/process.js';
import { PUBLISH_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startTestOrigin();
});
afterAll(async () => origin.stop());

async function send(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await request(`${origin.url}${path}`, { method, headers, body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers as Record<string, string>, text };
}

/** One request written byte for byte on a socket (no client normalises the target); the raw answer. */
function rawHttp(requestLine: string, headers: string[] = [], body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(origin.server.port, '127.0.0.1', () => {
      const head = [requestLine, 'Host: cdn.test', 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`, ...headers].join('\r\n');
      socket.write(`${head}\r\n\r\n${body}`);
    });
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0), text: out }));
  });
}

/**
 * An animated GIF of `frames` frames on a `width`×`height` screen, each frame a single changed
 * pixel: a few bytes per frame however large the screen.
 */
function gifWithFrames(width: number, height: number, frames: number): Buffer {
  const screen = Buffer.alloc(7);
  screen.writeUInt16LE(width, 0);
  screen.writeUInt16LE(height, 2);
  screen[4] = 0x80; // global colour table of 2 entries
  const parts = [Buffer.from('GIF89a'), screen, Buffer.from([0, 0, 0, 255, 255, 255])];
  parts.push(Buffer.from([0x21, 0xff, 0x0b, ...Buffer.from('NETSCAPE2.0'), 3, 1, 0, 0, 0]));
  for (let i = 0; i < frames; i++) {
    parts.push(Buffer.from([0x21, 0xf9, 4, 0, 10, 0, 0, 0]));
    const descriptor = Buffer.alloc(10);
    descriptor[0] = 0x2c;
    descriptor.writeUInt16LE(i % width, 1);
    descriptor.writeUInt16LE(1, 5);
    descriptor.writeUInt16LE(1, 7);
    // LZW minimum code size 2, one sub-block: clear, colour 0 or 1, end.
    parts.push(descriptor, Buffer.from([2, 2, i % 2 === 0 ? 0x44 : 0x4c, 0x01, 0]));
  }
  parts.push(Buffer.from([0x3b]));
  return Buffer.concat(parts);
}

describe('request targets', () => {
  it('refuses a leading empty segment instead of serving the asset under a second URL', async () => {
    await origin.put('t/plain.txt', 'plain');
    const aliased = await send('GET', '//t/plain.txt');
    expect(aliased.status).toBe(400);
    expect(JSON.parse(aliased.text)).toMatchObject({ error: 'invalid_path', field: 'path' });
    expect(aliased.text).toContain('empty segments');

    const upload = await send('PUT', '/_cdn/assets//t/other.txt', { authorization: `Bearer ${PUBLISH_TOKEN}` }, 'x');
    expect(upload.status).toBe(400);
    expect(upload.text).toContain('empty segments');
    expect((await send('GET', '/t/other.txt')).status).toBe(404);
  });

  it('applies the path rules to an absolute-form request target too', async () => {
    await origin.put('t/abs.txt', 'absolute');
    expect((await rawHttp('GET http://cdn.test/t/abs.txt HTTP/1.1')).status).toBe(200);
    const dots = await rawHttp('GET http://cdn.test/t/x/%2e%2e/abs.txt HTTP/1.1');
    expect(dots.status).toBe(400);
    expect(dots.text).toContain("'..' segments are not allowed");
    expect((await rawHttp('GET http://cdn.test/t/%2e%2e/_cdn/healthz HTTP/1.1')).status).toBe(400);

    const put = await rawHttp('PUT http://cdn.test/_cdn/assets/t/x/%2e%2e/sneaky.txt HTTP/1.1', [`Authorization: Bearer ${PUBLISH_TOKEN}`], 'x');
    expect(put.status).toBe(400);
    expect((await send('GET', '/t/sneaky.txt')).status).toBe(404);
  });

  it('refuses a percent-encoded publisher prefix instead of writing or deleting another asset', async () => {
    const auth = { authorization: `Bearer ${PUBLISH_TOKEN}` };
    await origin.put('s/t/keep.txt', 'keep me');
    // The router matches the decoded path; the asset path used to be cut from the raw one at a fixed offset.
    for (const target of ['/_cdn/%61ssets/t/keep.txt', '/%5Fcdn/assets/t/keep.txt']) {
      const put = await send('PUT', target, auth, 'overwritten');
      expect(put.status, target).toBe(400);
      expect(JSON.parse(put.text), target).toMatchObject({ error: 'invalid_path', field: 'path' });
      const del = await send('DELETE', target, auth);
      expect(del.status, target).toBe(400);
    }
    expect((await send('GET', '/s/t/keep.txt')).text).toBe('keep me');
    expect((await send('GET', '/t/keep.txt')).status).toBe(404);
    // The literal prefix without a trailing slash is still an empty path.
    expect(JSON.parse((await send('PUT', '/_cdn/assets', auth, 'x')).text)).toMatchObject({ error: 'invalid_path', message: 'invalid asset path: empty path' });
  });
});

describe('output limits', () => {
  it('counts every frame of an animated output, so tiny frames cannot become large ones', async () => {
    // 16×16 × 500 frames is 128 000 input pixels in ~6 KB; letterboxed to 512×512 it would be 131 M.
    await origin.put('t/frames.gif', gifWithFrames(16, 16, 500));
    const started = performance.now();
    const animated = await send('GET', '/t/frames.gif?w=512&h=512&fit=contain&fmt=webp');
    expect(animated.status).toBe(400);
    expect(JSON.parse(animated.text)).toMatchObject({ error: 'output_too_large' });
    expect(animated.text).toContain('500 frames');
    expect(performance.now() - started).toBeLessThan(1_000);
    // PNG keeps the first frame only: one 512×512 canvas is fine.
    expect((await send('GET', '/t/frames.gif?w=512&h=512&fit=contain&fmt=png')).status).toBe(200);
  });
});

describe('an original replaced while it is being served', () => {
  /** Makes the next store.read() of the origin see `path` already replaced by `body`. */
  function replaceBeforeNextRead(path: string, body: string): void {
    const store = origin.server.store as FsAssetStore & { read: FsAssetStore['read'] };
    const read = store.read;
    store.read = async function (this: FsAssetStore, ...args: Parameters<FsAssetStore['read']>) {
      store.read = read;
      await origin.put(path, body);
      return read.apply(this, args);
    } as FsAssetStore['read'];
  }

  it('never pairs the headers of one version with the bytes of another', async () => {
    await origin.put('t/race.txt', 'the old version, longer than the new one');
    replaceBeforeNextRead('t/race.txt', 'NEW');
    const res = await send('GET', '/t/race.txt');
    expect(res.status).toBe(200);
    expect(res.text).toBe('NEW');
    expect(res.headers['content-length']).toBe('3');
    expect(res.headers['etag']).toBe((await send('HEAD', '/t/race.txt')).headers['etag']);
  });

  it('answers a range from the version it reads, not a 416 for the old one', async () => {
    await origin.put('t/race-range.txt', 'the old version, longer than the new one');
    replaceBeforeNextRead('t/race-range.txt', 'NEW VERSION');
    const res = await send('GET', '/t/race-range.txt', { range: 'bytes=4-6' });
    expect(res.status).toBe(206);
    expect(res.text).toBe('VER');
    expect(res.headers['content-range']).toBe('bytes 4-6/11');
  });
});

describe.skipIf(!cliBuilt)('anycdn upload of a folder (needs dist/, built by npm test)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anycdn-review-upload-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('names the file whose name cannot be an asset path', async () => {
    await mkdir(join(dir, 'site'), { recursive: true });
    await writeFile(join(dir, 'site', 'good.txt'), 'good');
    await writeFile(join(dir, 'site', 'bad\\name.txt'), 'bad');
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, 'upload', join(dir, 'site'), 'static'], {
        env: { ...process.env, ANYCDN_ORIGIN: origin.url, ANYCDN_PUBLISH_TOKEN: PUBLISH_TOKEN },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('bad\\name.txt');
    expect(result.stderr).toContain('backslashes are not allowed');
  });
});
