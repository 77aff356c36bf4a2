import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfigFile } from '../../../src/config/config-file.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'anycdn-config-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readConfigFile: the file as data, before validation', () => {
  it('reads YAML, and JSON by its extension', async () => {
    await writeFile(join(dir, 'edge.yaml'), 'workers: 2\nmemory:\n  maxBytes: 64MiB\n');
    await writeFile(join(dir, 'edge.json'), '{"workers":2,"memory":{"maxBytes":"64MiB"}}');
    await writeFile(join(dir, 'edge.conf'), '{"workers": 2, "memory": {"maxBytes": 64MiB}}'); // YAML flow style, not JSON
    const want = { workers: 2, memory: { maxBytes: '64MiB' } };
    expect(await readConfigFile(join(dir, 'edge.yaml'))).toEqual(want);
    expect(await readConfigFile(join(dir, 'edge.json'))).toEqual(want);
    expect(await readConfigFile(join(dir, 'edge.conf'))).toEqual(want);
  });

  it('names the file when it cannot be read or parsed', async () => {
    await writeFile(join(dir, 'bad.json'), 'workers: 2');
    await writeFile(join(dir, 'bad.yaml'), 'workers: [2\n');
    await expect(readConfigFile(join(dir, 'none.yaml'))).rejects.toThrow(`${join(dir, 'none.yaml')}: cannot read: ENOENT`);
    await expect(readConfigFile(join(dir, 'bad.json'))).rejects.toThrow(new RegExp(`^${join(dir, 'bad.json')}: cannot parse: `));
    await expect(readConfigFile(join(dir, 'bad.yaml'))).rejects.toThrow(new RegExp(`^${join(dir, 'bad.yaml')}: cannot parse: `));
  });
});
