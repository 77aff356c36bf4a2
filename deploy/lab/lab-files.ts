/**
 * A lab's files in its run folder: each PoP's copy of the lab inventory, rendered with
 * `anycdn bgp render` and installed as on a node (etc/, and the withdrawn include in state/ as
 * anycdn-bird.service starts it), each client router's bird.conf, and the origin's config. Every
 * BIRD file is checked with `bird -p` before any daemon reads it.
 */
import { appendFile, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI } from './checkout.js';
import { labInventory, popFolder, type LabTimings } from './inventory.js';
import { runCommand } from './netns.js';
import { renderRouterConfig } from './router-config.js';
import { ORIGIN_ADDRESS, ORIGIN_PORT, type LabPlan, type LabRouter } from './topology.js';

export const PUBLISH_TOKEN = 'lab-publish-token-0123456789';

export function routerFolder(runDir: string, router: LabRouter): string {
  return join(runDir, router.name);
}

export function originConfig(runDir: string): string {
  return join(runDir, 'origin', 'origin.yaml');
}

export async function writeLabFiles(plan: LabPlan, runDir: string, timings: LabTimings, bird: string): Promise<void> {
  await Promise.all(
    plan.pops.map(async (pop) => {
      const folder = popFolder(runDir, pop);
      const base = join(runDir, pop.name);
      for (const dir of [folder.config, folder.state, folder.run, folder.cache]) await mkdir(dir, { recursive: true });
      const inventory = join(base, 'inventory.yaml');
      await writeFile(inventory, labInventory(plan, runDir, pop, timings));
      await runCommand(process.execPath, [CLI, 'bgp', 'render', '--inventory', inventory, '--out', join(base, 'rendered')], 120_000);
      const rendered = join(base, 'rendered', pop.name, pop.node);
      for (const file of ['bird.conf', 'announce.conf', 'edge.yaml', 'agent.yaml']) await copyFile(join(rendered, file), join(folder.config, file));
      // Every failed probe in the agent's log with its reason and time, not only the withdrawal
      // after `fall` of them: what tells a starved edge from a late agent (README, "Timings").
      await appendFile(join(folder.config, 'agent.yaml'), 'logLevel: debug\n');
      await copyFile(join(folder.config, 'announce.conf'), join(folder.state, 'announce.conf'));
    }),
  );
  for (const router of plan.routers) {
    await mkdir(routerFolder(runDir, router));
    await writeFile(join(routerFolder(runDir, router), 'bird.conf'), renderRouterConfig(plan, router, timings));
  }
  const confs = [...plan.pops.map((p) => join(popFolder(runDir, p).config, 'bird.conf')), ...plan.routers.map((r) => join(routerFolder(runDir, r), 'bird.conf'))];
  await Promise.all(confs.map((conf) => runCommand(bird, ['-p', '-c', conf], 60_000)));
  await mkdir(join(runDir, 'origin'));
  await writeFile(
    originConfig(runDir),
    [
      '# The lab origin, in its own namespace; the PoPs reach it over their links.',
      `listen: ${ORIGIN_ADDRESS}:${ORIGIN_PORT}`,
      `dataDir: ${join(runDir, 'origin', 'data')}`,
      `publishToken: ${PUBLISH_TOKEN}`,
      'purgeToken: lab-purge-token-0123456789',
      'logLevel: info',
      '',
    ].join('\n'),
  );
}
