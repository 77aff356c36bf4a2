/**
 * Every BIRD file of the lab passes `bird -p`: each PoP's bird.conf as `anycdn bgp render` writes
 * it from the lab inventory, and each client router's from deploy/lab/router-config.ts. The lab
 * checks them again before it starts any daemon; this runs without root.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { inventorySchema } from '../../../bgp/inventory.js';
import { renderInventory } from '../../../bgp/render.js';
import { labInventory, LAB_TIMINGS, popFolder } from '../../../deploy/lab/inventory.js';
import { renderRouterConfig } from '../../../deploy/lab/router-config.js';
import { labPlan } from '../../../deploy/lab/topology.js';
import { assertBirdInCi, birdParse, noBirdParse } from '../../support/bird.js';

assertBirdInCi(noBirdParse);

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(noBirdParse !== undefined)(`the lab's BIRD files${noBirdParse ? ` (skipped: ${noBirdParse})` : ''}`, () => {
  it.each([
    ['with BFD', LAB_TIMINGS],
    ['without BFD', { ...LAB_TIMINGS, bfd: { ...LAB_TIMINGS.bfd, enabled: false } }],
  ])('every PoP and router file passes bird -p (%s)', async (_name, timings) => {
    const runDir = await mkdtemp(join(tmpdir(), 'anycdn-lab-configs-'));
    dirs.push(runDir);
    const plan = labPlan('1-test');
    const files: string[] = [];
    for (const pop of plan.pops) {
      const text = labInventory(plan, runDir, pop, timings);
      const inventory = validateConfig(inventorySchema, parseConfigText('inventory.yaml', text), 'inventory.yaml', {});
      const rendered = new Map(renderInventory(inventory).map((f) => [f.path, f.content]));
      const folder = popFolder(runDir, pop);
      await mkdir(folder.state, { recursive: true });
      await writeFile(join(folder.state, 'announce.conf'), rendered.get(`${pop.name}/${pop.node}/announce.conf`)!);
      const conf = join(folder.config, 'bird.conf');
      await mkdir(dirname(conf), { recursive: true });
      await writeFile(conf, rendered.get(`${pop.name}/${pop.node}/bird.conf`)!);
      files.push(conf);
    }
    for (const router of plan.routers) {
      const conf = join(runDir, router.name, 'bird.conf');
      await mkdir(dirname(conf), { recursive: true });
      await writeFile(conf, renderRouterConfig(plan, router, timings));
      files.push(conf);
    }
    expect(files).toHaveLength(6);
    for (const file of files) expect(birdParse(file), file).toEqual({ status: 0, output: '' });
    // Every BFD session, PoP and router side, advertises the BFD interval even while not Up (BIRD's
    // `idle tx interval`, 1 s by default): a stale session left by a frozen PoP then expires within
    // multiplier x interval, before the BGP session it would take down has come back.
    const { interval, multiplier } = timings.bfd;
    const bfdLine = `  bfd { min rx interval ${interval} ms; min tx interval ${interval} ms; idle tx interval ${interval} ms; multiplier ${multiplier}; };`;
    for (const file of files) {
      const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l.trimStart().startsWith('bfd '));
      if (!timings.bfd.enabled) expect(lines, file).toEqual([]);
      else expect(lines.length > 0 && lines.every((l) => l === bfdLine), `${file}: ${lines.join(' | ')}`).toBe(true);
    }
  });
});
