/**
 * The origin's access log, as an operator reads it from the real command: one JSON line per
 * request on stdout (beside the lifecycle log), and for a newly generated variant where its time
 * went (queue, transform).
 */
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { until } from '../../support/until.js';

const TOKEN = 'request-log-test-token-0123456789';
const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The access lines in a process's output (JSON objects with a target), parsed. */
function accessLines(output: string): AccessLine[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"target":'))
    .map((line) => JSON.parse(line) as AccessLine);
}

interface AccessLine {
  method: string;
  target: string;
  status: number;
  bytes: number;
  outcome: string;
  phases?: { queueMs: number; transformMs: number };
}

describe.skipIf(!cliBuilt)(`origin access log (needs ${CLI}; run npm test, which builds it)`, () => {
  it("logs a new variant's queue and transform time, and none for a stored one", async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-reqlog-'));
    dirs.push(dir);
    const configFile = join(dir, 'origin.json');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: TOKEN, purgeToken: TOKEN, logLevel: 'info', accessLog: { flushInterval: '20ms' } }));
    const proc = startCli(['origin', '--config', configFile]);
    const url = String((await proc.waitForLog('origin listening'))['url']);
    const photo = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#3a6' } }).jpeg().toBuffer();
    const put = await request(`${url}/_cdn/assets/log/photo.jpg`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: photo });
    expect(put.statusCode).toBe(201);
    const putBody = await put.body.arrayBuffer();
    // An API answer is logged with the bytes it sent (its JSON has no Content-Length of its own).
    const uploadLines = (): AccessLine[] => accessLines(proc.output()).filter((l) => l.target === '/_cdn/assets/log/photo.jpg');
    await until('the upload in the access log', () => uploadLines().length > 0);
    expect(uploadLines()[0]).toMatchObject({ method: 'PUT', status: 201, bytes: putBody.byteLength, outcome: 'upload' });
    const lines = (): AccessLine[] => accessLines(proc.output()).filter((l) => l.target === '/log/photo.jpg?w=100&fmt=webp' && l.outcome.startsWith('variant'));
    // The variant is stored just after its first answer; until then a request shares that result.
    for (let i = 0; i < 40 && !lines().some((l) => l.outcome === 'variant-stored'); i++) {
      const res = await request(`${url}/log/photo.jpg?w=100&fmt=webp`);
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      await new Promise((r) => setTimeout(r, 25));
    }
    const [generated, ...later] = lines();
    expect(generated!.outcome).toBe('variant-generated');
    expect(generated!.phases!.queueMs).toBeGreaterThanOrEqual(0);
    expect(generated!.phases!.transformMs).toBeGreaterThan(0);
    const stored = later.find((l) => l.outcome === 'variant-stored');
    expect(stored).toBeDefined();
    expect(stored!.phases).toBeUndefined();
    // Requests that joined the first one's transform did not wait for a transform of their own.
    for (const l of later) expect(l.phases).toBeUndefined();
    // No lifecycle line per request any more: the access log has them.
    expect(proc.output()).not.toContain('"msg":"request"');
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

describe.skipIf(!cliBuilt)(`origin access log to a file, rotated (needs ${CLI})`, () => {
  it('writes combined lines to the file, the lifecycle log staying on stdout; after a rename and SIGUSR1, later lines go to a new file', async () => {
    const dir = await mkdtemp(join(os.tmpdir(), 'anycdn-reqlog-'));
    dirs.push(dir);
    const file = join(dir, 'origin-access.log');
    const configFile = join(dir, 'origin.json');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: TOKEN, purgeToken: TOKEN, accessLog: { path: file, format: 'combined' } }));
    const proc = startCli(['origin', '--config', configFile]);
    const url = String((await proc.waitForLog('origin listening'))['url']);
    const get = async (agent: string): Promise<void> => {
      const res = await request(`${url}/missing.txt`, { headers: { 'user-agent': agent } });
      expect(res.statusCode).toBe(404);
      await res.body.dump();
    };
    await get('before');
    await rename(file, `${file}.1`);
    proc.child.kill('SIGUSR1');
    await until('the access log reopened', () => proc.output().includes('"msg":"access log reopened"'));
    await get('after');
    proc.child.kill('SIGTERM');
    expect(await exited(proc.child)).toBe(0);
    const line = (agent: string): RegExp => new RegExp(`^127\\.0\\.0\\.1 - - \\[[^\\]]+\\] "GET /missing\\.txt HTTP/1\\.1" 404 \\d+ "-" "${agent}" not-found\\n$`);
    expect(await readFile(`${file}.1`, 'utf8')).toMatch(line('before'));
    expect(await readFile(file, 'utf8')).toMatch(line('after'));
    // Only the lifecycle log on stdout.
    for (const l of proc.output().split('\n').filter(Boolean)) expect((JSON.parse(l) as { msg?: string }).msg).toBeDefined();
  });
});
