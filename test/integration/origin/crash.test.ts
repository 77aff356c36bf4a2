/**
 * A crash in the middle of an upload must leave the previous version intact: the origin runs as
 * a real child process and is killed with SIGKILL while a new version is streaming in.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { CLI, cliBuilt, exited, startCli, stopAll } from '../../support/process.js';

const TOKEN = 'crash-test-publish-token-0123456789';
const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function startOriginProcess(dataDir: string, configFile: string) {
  const proc = startCli(['origin', '--config', configFile]);
  const log = await proc.waitForLog('origin listening');
  return { proc, url: String(log['url']) };
}

describe.skipIf(!cliBuilt)(`origin killed mid-upload (needs ${CLI}; run npm test, which builds it)`, () => {
  it('keeps the old version byte-exact and leaves no partial file visible', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-crash-'));
    dirs.push(dir);
    const dataDir = join(dir, 'data');
    const configFile = join(dir, 'origin.json');
    await writeFile(configFile, JSON.stringify({ listen: '127.0.0.1:0', dataDir, publishToken: TOKEN, purgeToken: TOKEN, logLevel: 'info' }));

    const first = await startOriginProcess(dataDir, configFile);
    const v1 = randomBytes(3 * 1024 * 1024);
    const put1 = await request(`${first.url}/_cdn/assets/big/file.bin`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: v1 });
    expect(put1.statusCode).toBe(201);
    await put1.body.dump();

    // Stream version 2: send 2 MiB of a declared 8 MiB, then kill the origin while it waits for more.
    const body = new PassThrough();
    const pending = request(`${first.url}/_cdn/assets/big/file.bin`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-length': String(8 * 1024 * 1024) },
      body,
    }).catch((err: Error) => err);
    for (let i = 0; i < 32; i++) body.write(randomBytes(64 * 1024));
    // Wait until the origin has written part of the new version to its temporary folder.
    const tmp = join(dataDir, 'tmp');
    for (let i = 0; i < 200; i++) {
      const names = await readdir(tmp).catch(() => []);
      if (names.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await readdir(tmp)).length).toBeGreaterThan(0);
    first.proc.child.kill('SIGKILL');
    await exited(first.proc.child);
    body.destroy();
    expect(await pending).toBeInstanceOf(Error);

    const second = await startOriginProcess(dataDir, configFile);
    const res = await request(`${second.url}/big/file.bin`);
    expect(res.statusCode).toBe(200);
    const got = Buffer.from(await res.body.arrayBuffer());
    expect(got.length).toBe(v1.length);
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(v1).digest('hex'));
    // The restarted store cleaned the partial upload away.
    expect(await readdir(tmp)).toEqual([]);
    second.proc.child.kill('SIGTERM');
    expect(await exited(second.proc.child)).toBe(0);
  });
});
