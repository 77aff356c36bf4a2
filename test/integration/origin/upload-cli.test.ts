/** `anycdn upload` as a publisher runs it: a file, a folder with nested files, and failures. */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(r.stdout).toMatch(/^ok {3}\/docs\/my hello\.txt \(19 B\) created text\/plain; charset=utf-8 "[0-9a-f]{32}"\n$/);
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
    expect(r.stdout).toContain('2 of 2 files uploaded');
    expect((await fetchText('/static/v2/index.html')).body).toBe('<!doctype html><title>x</title>');
    expect((await fetchText('/static/v2/css/app.css')).body).toBe('body{margin:0}');
  });

  it('fails with a clear message and exit code on a wrong token or a bad path', async () => {
    await writeFile(join(dir, 'x.txt'), 'x');
    const wrong = await run(['upload', join(dir, 'x.txt'), 'x.txt'], { ANYCDN_PUBLISH_TOKEN: 'wrong-token-wrong-token' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('FAIL /x.txt (1 B) HTTP 403: the publish token is not valid');
    const bad = await run(['upload', join(dir, 'x.txt'), '../x.txt']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("invalid asset path: '..' segments are not allowed");
    const usage = await run(['upload', join(dir, 'x.txt')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('expected FILE PATH or DIR PREFIX');
  });
});
