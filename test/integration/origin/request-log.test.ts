/**
 * The origin's request log, as an operator reads it from the real command: one JSON line per
 * request, and for a newly generated variant where its time went (queue, transform).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cliBuilt, startCli, stopAll } from '../../support/process.js';

const TOKEN = 'request-log-test-token-0123456789';
const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!cliBuilt)(`origin request log (needs ${CLI}; run npm test, which builds it)`, () => {
  it("logs a new variant's queue and transform time, and none for a stored one", async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-reqlog-'));
    dirs.push(dir);
    const configFile = join(dir, 'origin.json');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: TOKEN, purgeToken: TOKEN, logLevel: 'info' }));
    const proc = startCli(['origin', '--config', configFile]);
    const url = String((await proc.waitForLog('origin listening'))['url']);
    const photo = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#3a6' } }).jpeg().toBuffer();
    const put = await request(`${url}/_cdn/assets/log/photo.jpg`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: photo });
    expect(put.statusCode).toBe(201);
    const putBody = await put.body.arrayBuffer();
    type Line = { req: { path: string; cache: string; bytes: number; phases?: { queueMs: number; transformMs: number } } };
    // An API answer is logged with the bytes it sent (its JSON has no Content-Length of its own).
    const uploadLines = (): string[] => proc.output().split('\n').filter((line) => line.includes('"msg":"request"') && line.includes('/_cdn/assets/log/photo.jpg'));
    for (let i = 0; i < 100 && uploadLines().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const upload = uploadLines();
    expect((JSON.parse(upload[0]!) as Line).req.bytes).toBe(putBody.byteLength);
    const lines = (): Line[] =>
      proc
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"request"') && line.includes('/log/photo.jpg'))
        .map((line) => JSON.parse(line) as Line)
        .filter((l) => l.req.cache.startsWith('variant'));
    // The variant is stored just after its first answer; until then a request shares that result.
    for (let i = 0; i < 40 && !lines().some((l) => l.req.cache === 'variant-stored'); i++) {
      const res = await request(`${url}/log/photo.jpg?w=100&fmt=webp`);
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await new Promise((r) => setTimeout(r, 25));
    }
    const [generated, ...later] = lines();
    expect(generated!.req.cache).toBe('variant-generated');
    expect(generated!.req.phases!.queueMs).toBeGreaterThanOrEqual(0);
    expect(generated!.req.phases!.transformMs).toBeGreaterThan(0);
    const stored = later.find((l) => l.req.cache === 'variant-stored');
    expect(stored).toBeDefined();
    expect(stored!.req.phases).toBeUndefined();
    // Requests that joined the first one's transform did not wait for a transform of their own.
    for (const l of later) expect(l.req.phases).toBeUndefined();
    proc.child.kill('SIGTERM');
  });

  it('logs a full transform queue as one warning per refused request, not an error with a stack', async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-reqlog-'));
    dirs.push(dir);
    const configFile = join(dir, 'origin.json');
    const images = { concurrency: 1, queueLimit: 0 };
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: TOKEN, purgeToken: TOKEN, logLevel: 'info', images }));
    const proc = startCli(['origin', '--config', configFile]);
    const url = String((await proc.waitForLog('origin listening'))['url']);
    const photo = await sharp({ create: { width: 1200, height: 900, channels: 3, background: '#a63' } }).jpeg().toBuffer();
    const put = await request(`${url}/_cdn/assets/busy/photo.jpg`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: photo });
    await put.body.dump();
    const answers = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const res = await request(`${url}/busy/photo.jpg?w=${100 + i}&fmt=webp`);
        await res.body.dump();
        return res.statusCode;
      }),
    );
    expect(answers.filter((s) => s === 503).length).toBeGreaterThan(0);
    const lines = proc.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const refused = lines.filter((l) => l['msg'] === 'request refused, retry later');
    expect(refused.length).toBe(answers.filter((s) => s === 503).length);
    for (const l of refused) expect(l).toMatchObject({ level: 'warn', code: 'overloaded' });
    expect(lines.filter((l) => l['level'] === 'error')).toEqual([]);
    proc.child.kill('SIGTERM');
  });
});
