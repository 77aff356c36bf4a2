/**
 * `anycdn bgp render` as an operator runs it: files and modes on disk, and one clear line naming
 * the file and the field when the inventory is wrong.
 */
import { readFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function run(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; output: string }> {
  const cli = startCli(args, env);
  const code = await exited(cli.child, 20_000);
  return { code, output: cli.output() };
}

describe.skipIf(!cliBuilt)('anycdn bgp render (needs dist/, built by npm test)', () => {
  it('writes every node of the example, bird.conf with a password 0640', async () => {
    const out = await mkdtemp(join(tmpdir(), 'anycdn-render-'));
    dirs.push(out);
    const r = await run(['bgp', 'render', '--inventory', join(root, 'deploy/inventory.example.yaml'), '--out', out], { ANYCDN_BGP_PASSWORD_AMS: 'pw' });
    expect(r).toEqual({ code: 0, output: `wrote 28 files for 4 nodes under ${out}\n` });
    expect((await readdir(out)).sort()).toEqual(['ams', 'fra', 'sin']);
    expect((await readdir(join(out, 'ams/ams-2'))).sort()).toEqual([
      'agent.yaml',
      'announce.conf',
      'anycdn-bgp-agent.service',
      'anycdn-bird.service',
      'anycdn-edge.service',
      'bird.conf',
      'edge.yaml',
    ]);
    expect((await stat(join(out, 'ams/ams-1/bird.conf'))).mode & 0o777).toBe(0o640);
    expect((await stat(join(out, 'fra/fra-1/bird.conf'))).mode & 0o777).toBe(0o644);
    expect(await readFile(join(out, 'ams/ams-1/bird.conf'), 'utf8')).toContain('  password "pw";\n');
  });

  it('names the file and the field of a wrong inventory, and writes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anycdn-render-'));
    dirs.push(dir);
    const inventory = join(dir, 'inventory.yaml');
    const text = (await readFile(join(root, 'deploy/inventory.example.yaml'), 'utf8')).replace('asn: 65002', 'asn: 23456');
    await writeFile(inventory, text);
    const r = await run(['bgp', 'render', '--inventory', inventory, '--out', join(dir, 'out')], { ANYCDN_BGP_PASSWORD_AMS: 'pw' });
    expect(r).toEqual({ code: 1, output: `anycdn: ${inventory}: pops.1.asn: AS 23456 is AS_TRANS (RFC 6793), reserved: not a usable AS number\n` });
    expect(await readdir(dir)).toEqual(['inventory.yaml']);
  });

  it('says which environment variable a password needs', async () => {
    const r = await run(['bgp', 'render', '-i', join(root, 'deploy/inventory.example.yaml'), '-o', '/nonexistent'], { ANYCDN_BGP_PASSWORD_AMS: undefined });
    expect(r.code).toBe(1);
    expect(r.output).toBe(`anycdn: ${join(root, 'deploy/inventory.example.yaml')}: pops.0.nodes.0.neighbours.0.password: environment variable ANYCDN_BGP_PASSWORD_AMS is not set\n`);
  });

  it('is a usage error without --out', async () => {
    const r = await run(['bgp', 'render', '--inventory', 'x.yaml']);
    expect(r.code).toBe(2);
    expect(r.output.split('\n')[0]).toBe('anycdn: --out is required');
  });
});
