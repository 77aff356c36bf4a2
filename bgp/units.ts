/**
 * systemd units for an anycast node, as pure functions of the inventory's paths. The agent and
 * BIRD are tied so that no route stays announced without an agent watching the edge:
 *
 * - anycdn-bird.service starts withdrawn every time (ExecStartPre copies the rendered, withdrawn
 *   announce include over the live one) and is bound to the agent (`BindsTo=`): stopping the agent
 *   for good stops BIRD, which closes its sessions.
 * - anycdn-bgp-agent.service requires BIRD and, however it ends (stopped, crashed, killed),
 *   runs `anycdn bgp withdraw` (ExecStopPost=) before systemd restarts it withdrawn.
 * - anycdn-edge.service is the plain edge unit (deploy/systemd/anycdn-edge.service).
 */
import { controlSocketPath } from './node-files.js';
import { announceFilePath } from './bird-config.js';
import type { Inventory } from './inventory.js';

export const UNIT_NAMES = ['anycdn-edge.service', 'anycdn-bgp-agent.service', 'anycdn-bird.service'] as const;

export function renderUnits(inv: Inventory): Record<(typeof UNIT_NAMES)[number], string> {
  return {
    'anycdn-edge.service': edgeUnit(inv),
    'anycdn-bgp-agent.service': agentUnit(inv),
    'anycdn-bird.service': birdUnit(inv),
  };
}

function edgeUnit(inv: Inventory): string {
  const cacheDir = inv.edge.cacheDir;
  const cacheDirectory = cacheDir.startsWith('/var/cache/') ? [`CacheDirectory=${cacheDir.slice('/var/cache/'.length)}`] : [];
  return [
    '[Unit]',
    'Description=anycdn edge',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    'User=anycdn',
    'Group=anycdn',
    '# Secrets edge.yaml reads from the environment, e.g. ANYCDN_EDGE_TOKEN=... ANYCDN_ADMIN_TOKEN=... (optional file).',
    `EnvironmentFile=-${inv.paths.config}/edge.env`,
    'Environment=MALLOC_ARENA_MAX=2',
    `ExecStart=/usr/bin/env anycdn edge --config ${inv.paths.config}/edge.yaml`,
    '# SIGTERM drains: health turns 503 (the BGP agent withdraws the route), the edge keeps serving',
    '# for `drain`, then closes. Allow for it. With `workers: N` every process of the group gets the',
    '# signal; workers ignore it and drain when the primary tells them (KillMode=control-group).',
    '# `systemctl reload` reopens the access log file (after logrotate has renamed it).',
    'ExecReload=/bin/kill -USR1 $MAINPID',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${Math.max(60, Math.ceil(inv.drain.time / 1000) + 30)}`,
    'Restart=on-failure',
    ...cacheDirectory,
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    `ReadWritePaths=${cacheDir}`,
    '# /var/log/anycdn, writable by the service, for the access log.',
    'LogsDirectory=anycdn',
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

function agentUnit(inv: Inventory): string {
  const config = `${inv.paths.config}/agent.yaml`;
  const state = inv.paths.state;
  const stateDirectory = state.startsWith('/var/lib/') ? [`StateDirectory=${state.slice('/var/lib/'.length)}`] : [`ReadWritePaths=${state}`];
  return [
    '[Unit]',
    'Description=anycdn BGP agent: announces the anycast prefixes while the edge is healthy',
    'Wants=anycdn-edge.service',
    'Requires=anycdn-bird.service',
    'After=network-online.target anycdn-bird.service anycdn-edge.service',
    '',
    '[Service]',
    'Type=simple',
    'User=anycdn',
    'Group=anycdn',
    "# BIRD's control socket is bird:bird, mode 0660.",
    'SupplementaryGroups=bird',
    `ExecStart=/usr/bin/env anycdn bgp agent --config ${config}`,
    '# However the agent ends (stopped, crashed, killed), withdraw before anything else: BIRD must not',
    '# keep announcing for an edge nobody watches. Restarted, the agent starts withdrawn.',
    `ExecStopPost=/usr/bin/env anycdn bgp withdraw --config ${config}`,
    '# SIGTERM: the graceful-shutdown community for `gracefulShutdown`, then the withdrawal.',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${Math.ceil(inv.drain.gracefulShutdown / 1000) + 20}`,
    'Restart=always',
    'RestartSec=2',
    ...stateDirectory,
    'NoNewPrivileges=true',
    'ProtectSystem=strict',
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

function birdUnit(inv: Inventory): string {
  const conf = `${inv.paths.config}/bird.conf`;
  const socket = controlSocketPath(inv);
  const run = inv.paths.run;
  const runtimeDirectory = run.startsWith('/run/') ? [`RuntimeDirectory=${run.slice('/run/'.length)}`, 'RuntimeDirectoryMode=0755'] : [];
  return [
    '[Unit]',
    'Description=BIRD for anycdn: announces the anycast prefixes only while anycdn-bgp-agent says so',
    'Documentation=man:bird(8)',
    'After=network-online.target',
    'Wants=network-online.target',
    '# Stopped with the agent: with nobody to withdraw the route, BIRD must not keep announcing it.',
    'BindsTo=anycdn-bgp-agent.service',
    '',
    '[Service]',
    'Type=simple',
    ...runtimeDirectory,
    '# BIRD writes its pid file after dropping to the bird user.',
    `ExecStartPre=/usr/bin/install -d -o bird -g bird -m 0755 ${run}`,
    '# Fail-closed: every start begins withdrawn; the agent announces once the edge has proved healthy.',
    `ExecStartPre=/usr/bin/install -D -m 0644 ${inv.paths.config}/announce.conf ${announceFilePath(inv)}`,
    `ExecStartPre=/usr/sbin/bird -p -c ${conf}`,
    `ExecStart=/usr/sbin/bird -f -u bird -g bird -c ${conf} -s ${socket} -P ${run}/bird.pid`,
    '# The announce decision lives in a file bird.conf includes, so a reconfiguration keeps it.',
    `ExecReload=/usr/sbin/birdc -s ${socket} configure`,
    'Restart=on-failure',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
