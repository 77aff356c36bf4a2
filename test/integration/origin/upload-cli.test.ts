/** `anycdn upload` as a publisher runs it: a file, a folder with nested files, and failures. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { CLI, cliBuilt } from '../../support/process.js';
import { PUBLISH_TOKEN, startTestOrigin, type TestOrigin } from '../../support/origin.js';

let origin: TestOrigin;
let dir: string;
beforeAll(async () => {
  origin = await startTestOrigin();
  dir = await mkdtemp(join(tmpdir(), 'anycdn-upload-'));
});
afterAll(async () => {
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ANYCDN_ORIGIN: origin.url, ANYCDN_PUBLISH_TOKEN: PUBLISH_TOKEN, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function fetchText(path: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const res = await request(`${origin.url}${path}`);
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

describe.skipIf(!cliBuilt)('anycdn upload (needs dist/, built by npm test)', () => {
  it('uploads one file with its tags and Cache-Control', async () => {
    await writeFile(join(dir, 'hello.txt'), 'hello from the CLI\n');
    const r = await run(['upload', join(dir, 'hello.txt'), 'docs/my hello.txt', '--tag', 'docs', '--tag', 'v1', '--cache-control', 'public, max-age=120']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok {3}\/docs\/my hello\.txt \(19 B\) created text\/plain; charset=utf-8 "[0-9a-f]{32}", purge [0-9a-f]{12}-\d+\n$/);
    const got = await fetchText('/docs/my%20hello.txt');
    expect(got.body).toBe('hello from the CLI\n');
    expect(got.headers['cache-control']).toBe('public, max-age=120');
    expect(got.headers['surrogate-key']).toBe('/docs/my%20hello.txt docs v1');
  });

  it('uploads a folder recursively under a prefix', async () => {
    const site = join(dir, 'site');
    await mkdir(join(site, 'css'), { recursive: true });
    await writeFile(join(site, 'index.html'), '<!doctype html><title>x</title>');
    await writeFile(join(site, 'css', 'app.css'), 'body{margin:0}');
    const r = await run(['upload', site, 'static/v2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('2 uploaded, 0 unchanged, 0 deleted, 2 purged\n');
    expect((await fetchText('/static/v2/index.html')).body).toBe('<!doctype html><title>x</title>');
    expect((await fetchText('/static/v2/css/app.css')).body).toBe('body{margin:0}');
  });

  it('syncs a folder: only new and changed files are sent, --delete removes what left, --dry-run changes nothing', async () => {
    const site = join(dir, 'sync');
    await mkdir(join(site, 'css'), { recursive: true });
    await writeFile(join(site, 'index.html'), '<p>v1');
    await writeFile(join(site, 'css', 'a.css'), 'a{}');
    await writeFile(join(site, 'css', 'b.css'), 'b{}');
    await writeFile(join(site, 'old.txt'), 'old');
    // Another folder next to it, with a name that starts the same: never touched by --delete.
    await origin.put('syncx/keep.txt', 'keep');
    await origin.put('sync/stale-from-before.txt', 'stale');
    const first = await run(['upload', site, '/sync/', '--tag', 'site']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('4 uploaded, 0 unchanged, 0 deleted, 4 purged\n');

    // The same folder again: one listing, nothing sent, nothing purged.
    const last = origin.server.purges.log.lastSeq;
    const again = await run(['upload', site, 'sync', '--tag', 'site']);
    expect([again.code, again.stdout]).toEqual([0, '0 uploaded, 4 unchanged, 0 deleted, 0 purged\n']);
    expect(origin.server.purges.log.lastSeq).toBe(last);

    // One file edited, one removed, one added, and the tags of all changed for the dry run.
    await writeFile(join(site, 'css', 'a.css'), 'a{color:red}');
    await rm(join(site, 'old.txt'));
    await writeFile(join(site, 'new.txt'), 'new');
    const dry = await run(['upload', site, 'sync', '--tag', 'site', '--delete', '--dry-run']);
    expect([dry.code, dry.stdout]).toEqual([
      0,
      'would upload /sync/css/a.css (12 B, changed content)\n' +
        'would upload /sync/new.txt (3 B, new)\n' +
        'would delete /sync/old.txt\n' +
        'would delete /sync/stale-from-before.txt\n' +
        'dry run: 2 to upload, 2 unchanged, 2 to delete; nothing was changed\n',
    ]);
    expect(origin.server.purges.log.lastSeq).toBe(last);
    expect((await fetchText('/sync/old.txt')).status).toBe(200);
    const retagged = await run(['upload', site, 'sync', '--tag', 'site-v2', '--dry-run']);
    expect(retagged.stdout).toContain('would upload /sync/index.html (5 B, changed headers)\n');

    const synced = await run(['upload', site, 'sync', '--tag', 'site', '--delete']);
    expect(synced.code).toBe(0);
    expect(synced.stdout).toMatch(/^ok {3}\/sync\/css\/a\.css \(12 B\) replaced text\/css; charset=utf-8 "[0-9a-f]{32}", purge \S+\n/m);
    expect(synced.stdout).toMatch(/^ok {3}\/sync\/new\.txt \(3 B\) created /m);
    expect(synced.stdout).toMatch(/^ok {3}\/sync\/old\.txt deleted, purge \S+\n/m);
    expect(synced.stdout).toMatch(/^ok {3}\/sync\/stale-from-before\.txt deleted, purge \S+\n/m);
    expect(synced.stdout.endsWith('2 uploaded, 2 unchanged, 2 deleted, 4 purged\n')).toBe(true);
    expect(origin.server.purges.log.lastSeq).toBe(last + 4);
    expect((await fetchText('/sync/old.txt')).status).toBe(404);
    expect((await fetchText('/sync/css/a.css')).body).toBe('a{color:red}');
    expect((await fetchText('/syncx/keep.txt')).status).toBe(200);
  }, 90_000); // five CLI runs, each a process start

  it('pages through a listing longer than one page', async () => {
    const many = join(dir, 'many');
    await mkdir(many, { recursive: true });
    // Stored straight into the origin's store (the same bytes, no tags), plus one more the folder lacks, past the first page.
    // Sixteen at a time: each put is durable (fsyncs), and one after another they took most of the
    // test's time on a loaded machine.
    for (let start = 0; start < 1005; start += 16) {
      const batch = Array.from({ length: Math.min(16, 1005 - start) }, (_, j) => start + j);
      await Promise.all(
        batch.map(async (i) => {
          const name = `f${String(i).padStart(4, '0')}.txt`;
          await writeFile(join(many, name), `file ${i}`);
          await origin.server.store.put(`many/${name}`, Readable.from([Buffer.from(`file ${i}`)]), { maxBytes: 1024 });
        }),
      );
    }
    await origin.server.store.put('many/zzz-extra.txt', Readable.from([Buffer.from('extra')]), { maxBytes: 1024 });
    const r = await run(['upload', many, 'many', '--delete']);
    expect([r.code, r.stdout]).toEqual([0, 'ok   /many/zzz-extra.txt deleted, purge ' + `${origin.server.purges.log.id}-${origin.server.purges.log.lastSeq}` + '\n0 uploaded, 1005 unchanged, 1 deleted, 1 purged\n']);
  }, 90_000); // 1,006 durable puts first

  it('an unchanged single file says so and purges nothing', async () => {
    await writeFile(join(dir, 'same.txt'), 'same');
    await run(['upload', join(dir, 'same.txt'), 'same.txt']);
    const r = await run(['upload', join(dir, 'same.txt'), 'same.txt']);
    expect(r.stdout).toMatch(/^ok {3}\/same\.txt \(4 B\) unchanged text\/plain; charset=utf-8 "[0-9a-f]{32}"\n$/);
    const usage = await run(['upload', join(dir, 'same.txt'), 'same.txt', '--delete']);
    expect([usage.code, usage.stderr]).toEqual([2, expect.stringContaining('--delete and --dry-run apply to a folder')]);
  });

  it('fails with a clear message and exit code on a wrong token or a bad path', async () => {
    await writeFile(join(dir, 'x.txt'), 'x');
    const wrong = await run(['upload', join(dir, 'x.txt'), 'x.txt'], { ANYCDN_PUBLISH_TOKEN: 'wrong-token-wrong-token' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('FAIL /x.txt (1 B) HTTP 403: the publish token is not valid');
    const wrongFolder = await run(['upload', join(dir, 'site'), 'static/v2'], { ANYCDN_PUBLISH_TOKEN: 'wrong-token-wrong-token' });
    expect([wrongFolder.code, wrongFolder.stderr]).toEqual([1, 'anycdn: listing static/v2/ failed: HTTP 403: the publish token is not valid\n']);
    const bad = await run(['upload', join(dir, 'x.txt'), '../x.txt']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid asset path: '..' segments are not allowed");
    const usage = await run(['upload', join(dir, 'x.txt')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('expected FILE PATH or DIR PREFIX');
  });
});
