/**
 * The edge's and the agent's configuration files for one node, as pure functions of the
 * inventory. They are YAML in the shape `anycdn edge` and `anycdn bgp agent` validate (tests
 * parse them with those schemas); secrets stay `{ env: NAME }` references.
 */
import type { ListenAddress } from '../src/config/common.js';
import { announceFilePath } from './bird-config.js';
import { formatDuration } from './inventory-checks.js';
import type { Inventory, InventoryNode, Pop } from './inventory.js';

export function formatListen(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** A listen address as a YAML value: `[::]:80` is quoted (a bare `[` opens a YAML sequence). */
function yamlListen(address: ListenAddress): string {
  const text = formatListen(address);
  return text.startsWith('[') ? JSON.stringify(text) : text;
}

/** The edge's health URL on loopback: a wildcard listener is probed on loopback, a specific address on itself. */
export function healthUrl(listen: ListenAddress): string {
  const host = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  return `http://${formatListen({ host, port: listen.port })}/_cdn/healthz`;
}

export function controlSocketPath(inv: Inventory): string {
  return `${inv.paths.run}/bird.ctl`;
}

export function renderEdgeConfig(inv: Inventory, pop: Pop, node: InventoryNode): string {
  const lines = [
    `# anycdn edge ${pop.name}/${node.name}, rendered by \`anycdn bgp render\` from the inventory.`,
    `listen: ${yamlListen(inv.edge.listen)}`,
    `upstream: ${pop.upstream ?? inv.origin.url}`,
    `pop: ${pop.name}`,
    `node: ${node.name}`,
    `cacheDir: ${inv.edge.cacheDir}`,
    `workers: ${inv.edge.workers}`,
    '# After SIGTERM, health answers 503 this long while the edge still serves: the BGP agent',
    '# sends the graceful-shutdown community, withdraws, and routers move clients away meanwhile.',
    `drain: ${formatDuration(inv.drain.time)}`,
  ];
  if (inv.edge.edgeTokenEnv !== undefined) {
    lines.push(
      "# Purges: the origin's purge stream (from the origin itself, even when upstream is a shield),",
      '# followed with the edge token the origin has as `edgeToken`.',
      `purgeFrom: ${inv.origin.url}`,
      `edgeToken: { env: ${inv.edge.edgeTokenEnv} }`,
    );
  }
  if (inv.edge.adminTokenEnv !== undefined) lines.push(`adminToken: { env: ${inv.edge.adminTokenEnv} }`);
  return lines.join('\n') + '\n';
}

export function renderAgentConfig(inv: Inventory, pop: Pop, node: InventoryNode): string {
  const { health, damping } = inv;
  return [
    `# anycdn bgp agent beside edge ${pop.name}/${node.name}, rendered by \`anycdn bgp render\` from the inventory.`,
    `pop: ${pop.name}`,
    `node: ${node.name}`,
    'health:',
    `  url: ${healthUrl(inv.edge.listen)}`,
    `  interval: ${formatDuration(health.interval)}`,
    `  timeout: ${formatDuration(health.timeout)}`,
    `  rise: ${health.rise}`,
    `  fall: ${health.fall}`,
    // Absent: the agent's default, fall × interval, follows those two.
    ...(health.stallLimit === undefined ? [] : [`  stallLimit: ${formatDuration(health.stallLimit)}`]),
    `damping: { maxFlips: ${damping.maxFlips}, window: ${formatDuration(damping.window)}, holdDown: ${formatDuration(damping.holdDown)} }`,
    `gracefulShutdown: ${formatDuration(inv.drain.gracefulShutdown)}`,
    'bird:',
    `  socket: ${controlSocketPath(inv)}`,
    `  announceFile: ${announceFilePath(inv)}`,
    `metrics: ${yamlListen(inv.agent.metrics)}`,
  ].join('\n') + '\n';
}
