/**
 * Every rendered bird.conf parses with the real BIRD (`bird -p`), in each announce state: the
 * lab inventory of the unit tests and the example operators copy.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { ANNOUNCE_STATES, announceInclude } from '../../../bgp/announce.js';
import { inventorySchema } from '../../../bgp/inventory.js';
import { renderInventory } from '../../../bgp/render.js';
import { assertBirdInCi, birdParse, noBirdParse } from '../../support/bird.js';

assertBirdInCi(noBirdParse);

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const LAB = `
anycast: { prefixes: [203.0.113.0/24, 198.51.100.128/25, 2001:db8:ac::/48] }
origin: { url: http://origin.internal:8081 }
bfd: { interval: 50ms, multiplier: 5 }
sessions: { holdTime: 9s, keepaliveTime: 3s, connectDelayTime: 1s, connectRetryTime: 5s, errorWaitTime: { min: 2s, max: 30s } }
pops:
  - name: lab
    asn: 65010
    nodes:
      - name: lab-1
        routerId: 10.0.0.1
        kernelImport: true
        interfaces:
          - { name: veth0, addresses: [10.0.0.1/30, "2001:db8:1::1/64"] }
          - { name: veth1, addresses: [10.0.1.1/30] }
        neighbours:
          - { name: client, address: 10.0.0.2, asn: 65020, password: "pa ss", prepend: 2, med: 50 }
          - { name: filter, address: "fe80::2", interface: veth0, asn: 65020, bfd: false }
          - { name: RR.1, address: 10.0.1.2, asn: 65010 }
          - { name: far, address: 198.51.100.1, asn: 4200000000, multihop: 3, sourceAddress: 10.0.1.1 }
`;

/** Render with `paths.state` in a temp folder, so the include bird.conf names exists. */
async function renderedConfs(yaml: string, env: Record<string, string>): Promise<{ state: string; confs: [string, string][] }> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-bird-parse-'));
  dirs.push(dir);
  const raw = parseConfigText('inventory.yaml', yaml) as Record<string, unknown>;
  raw['paths'] = { ...(raw['paths'] as object), state: join(dir, 'state') };
  const inv = validateConfig(inventorySchema, raw, 'inventory.yaml', env);
  await mkdir(join(dir, 'state'));
  const confs: [string, string][] = [];
  for (const file of renderInventory(inv)) {
    if (!file.path.endsWith('/bird.conf')) continue;
    const target = join(dir, file.path.replaceAll('/', '_'));
    await writeFile(target, file.content);
    confs.push([file.path, target]);
  }
  return { state: join(dir, 'state', 'announce.conf'), confs };
}

describe.skipIf(noBirdParse !== undefined)(`bird -p on rendered configs${noBirdParse ? ` (skipped: ${noBirdParse})` : ''}`, () => {
  it.each(ANNOUNCE_STATES)('the lab node, %s', async (state) => {
    const { state: include, confs } = await renderedConfs(LAB, {});
    await writeFile(include, announceInclude(state));
    expect(confs.map(([path]) => path)).toEqual(['lab/lab-1/bird.conf']);
    for (const [, file] of confs) expect(birdParse(file)).toEqual({ status: 0, output: '' });
  });

  it.each(ANNOUNCE_STATES)('every node of deploy/inventory.example.yaml, %s', async (state) => {
    const yaml = readFileSync(join(root, 'deploy/inventory.example.yaml'), 'utf8');
    const { state: include, confs } = await renderedConfs(yaml, { ANYCDN_BGP_PASSWORD_AMS: 'example password' });
    await writeFile(include, announceInclude(state));
    expect(confs.map(([path]) => path)).toEqual(['ams/ams-1/bird.conf', 'ams/ams-2/bird.conf', 'fra/fra-1/bird.conf', 'sin/sin-1/bird.conf']);
    for (const [, file] of confs) expect(birdParse(file), file).toEqual({ status: 0, output: '' });
  });

  it('fails closed: without the announce include BIRD refuses the config', async () => {
    const { confs } = await renderedConfs(LAB, {});
    const r = birdParse(confs[0]![1]);
    expect(r.status).toBe(1);
    expect(r.output).toContain('Unable to open included file');
  });
});
