/**
 * `anycdn bgp render`: the inventory → every file of every node, as a pure function. Each node
 * gets `<pop>/<node>/` with bird.conf, the withdrawn announce.conf it starts from, edge.yaml,
 * agent.yaml and the systemd units. The command (src/cli/bgp-command.ts) only writes them.
 */
import { announceInclude } from './announce.js';
import { renderBirdConfig } from './bird-config.js';
import type { Inventory } from './inventory.js';
import { renderAgentConfig, renderEdgeConfig } from './node-files.js';
import { renderUnits } from './units.js';

export interface RenderedFile {
  /** Relative path: `<pop>/<node>/<file>`. */
  path: string;
  content: string;
  /** File mode: 0o640 for a bird.conf holding BGP passwords (readable by BIRD's group), else 0o644. */
  mode: number;
}

export function renderInventory(inv: Inventory): RenderedFile[] {
  const files: RenderedFile[] = [];
  const units = renderUnits(inv);
  for (const pop of inv.pops) {
    for (const node of pop.nodes) {
      const dir = `${pop.name}/${node.name}`;
      const secret = node.neighbours.some((n) => n.password !== undefined);
      files.push(
        { path: `${dir}/bird.conf`, content: renderBirdConfig(inv, pop, node), mode: secret ? 0o640 : 0o644 },
        { path: `${dir}/announce.conf`, content: announceInclude('withdrawn'), mode: 0o644 },
        { path: `${dir}/edge.yaml`, content: renderEdgeConfig(inv, pop, node), mode: 0o644 },
        { path: `${dir}/agent.yaml`, content: renderAgentConfig(inv, pop, node), mode: 0o644 },
        ...Object.entries(units).map(([name, content]) => ({ path: `${dir}/${name}`, content, mode: 0o644 })),
      );
    }
  }
  return files;
}
