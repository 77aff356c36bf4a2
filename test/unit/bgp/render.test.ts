import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { agentConfigSchema, stallLimit } from '../../../bgp/agent-config.js';
import { inventorySchema, type Inventory } from '../../../bgp/inventory.js';
import { renderInventory, type RenderedFile } from '../../../bgp/render.js';

function inventory(yaml: string, env: Record<string, string> = {}): Inventory {
  return validateConfig(inventorySchema, parseConfigText('inventory.yaml', yaml), 'inventory.yaml', env);
}

function byPath(files: RenderedFile[]): Map<string, RenderedFile> {
  return new Map(files.map((f) => [f.path, f]));
}

// One node with every kind of neighbour: eBGP with a password, prepends and a MED, named with a
// BIRD keyword; link-local IPv6 without BFD; iBGP to a route reflector.
const LAB = `
anycast: { prefixes: [203.0.113.0/24, 198.51.100.128/25, 2001:db8:ac::/48] }
origin: { url: http://origin.internal:8081 }
edge: { listen: "[::]:8080", cacheDir: /srv/cache, workers: 2, edgeTokenEnv: EDGE_TOKEN }
health: { interval: 500ms, timeout: 250ms, rise: 2, fall: 3 }
damping: { maxFlips: 3, window: 90s, holdDown: 2m }
drain: { time: 12s, gracefulShutdown: 1500ms, convergenceMargin: 8s }
bfd: { interval: 50ms, multiplier: 5 }
sessions: { holdTime: 9s, keepaliveTime: 3s, connectDelayTime: 1s, connectRetryTime: 5s, errorWaitTime: { min: 2s, max: 30s } }
agent: { metrics: "[::1]:9200" }
paths: { config: /opt/anycdn/etc, state: /opt/anycdn/state, run: /opt/anycdn/run }
pops:
  - name: lab
    asn: 65010
    upstream: http://shield.lab:8080
    nodes:
      - name: lab-1
        routerId: 10.0.0.1
        interfaces:
          - { name: veth0, addresses: [10.0.0.1/30, "2001:db8:1::1/64"] }
          - { name: veth1, addresses: [10.0.1.1/30] }
        neighbours:
          - { name: client, address: 10.0.0.2, asn: 65020, password: { env: PW }, prepend: 2, med: 50 }
          - { address: "fe80::2", interface: veth0, asn: 65020, bfd: false }
          - { name: RR.1, address: 10.0.1.2, asn: 65010 }
`;

const LAB_BIRD = `# BIRD 2 configuration of anycdn node lab-1 in PoP lab (AS65010).
# Rendered by \`anycdn bgp render\` from the inventory: change the inventory and render again.

log stderr all;
router id 10.0.0.1;

# ANYCDN_ANNOUNCE (0 withdrawn, 1 announced) and ANYCDN_GSHUT (1: graceful shutdown, RFC 8326),
# rewritten by anycdn bgp agent and read again on every \`configure\`.
include "/opt/anycdn/state/announce.conf";

define ANYCDN_ANYCAST4 = [ 203.0.113.0/24, 198.51.100.128/25 ];
define ANYCDN_ANYCAST6 = [ 2001:db8:ac::/48 ];

protocol device anycdn_device {
  scan time 10;
}

# The anycast prefixes, in BIRD's table only (no kernel protocol exports them).
protocol static anycdn_anycast4 {
  ipv4;
  route 203.0.113.0/24 blackhole;
  route 198.51.100.128/25 blackhole;
}

protocol static anycdn_anycast6 {
  ipv6;
  route 2001:db8:ac::/48 blackhole;
}

protocol bfd anycdn_bfd {
}

filter anycdn_export_peer1 {
  if ANYCDN_ANNOUNCE != 1 then reject;
  if proto != "anycdn_anycast4" then reject;
  if net !~ ANYCDN_ANYCAST4 then reject;
  bgp_path.prepend(65010);
  bgp_path.prepend(65010);
  bgp_med = 50;
  if ANYCDN_GSHUT = 1 then bgp_community.add((65535, 0));
  accept;
}

protocol bgp anycdn_peer1_client {
  description "client 10.0.0.2 AS65020";
  local as 65010;
  neighbor 10.0.0.2 as 65020;
  source address 10.0.0.1;
  password "pa ss";
  hold time 9;
  keepalive time 3;
  connect delay time 1;
  connect retry time 5;
  error wait time 2, 30;
  bfd { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 50 ms; multiplier 5; };
  ipv4 {
    import none;
    export filter anycdn_export_peer1;
  };
}

filter anycdn_export_peer2 {
  if ANYCDN_ANNOUNCE != 1 then reject;
  if proto != "anycdn_anycast6" then reject;
  if net !~ ANYCDN_ANYCAST6 then reject;
  if ANYCDN_GSHUT = 1 then bgp_community.add((65535, 0));
  accept;
}

protocol bgp anycdn_peer2 {
  description "fe80::2 AS65020";
  local as 65010;
  neighbor fe80::2 as 65020;
  interface "veth0";
  hold time 9;
  keepalive time 3;
  connect delay time 1;
  connect retry time 5;
  error wait time 2, 30;
  ipv6 {
    import none;
    export filter anycdn_export_peer2;
  };
}

filter anycdn_export_peer3 {
  if ANYCDN_ANNOUNCE != 1 then reject;
  if proto != "anycdn_anycast4" then reject;
  if net !~ ANYCDN_ANYCAST4 then reject;
  if ANYCDN_GSHUT = 1 then { bgp_community.add((65535, 0)); bgp_local_pref = 0; }
  accept;
}

protocol bgp anycdn_peer3_rr_1 {
  description "RR.1 10.0.1.2 AS65010";
  local as 65010;
  neighbor 10.0.1.2 as 65010;
  source address 10.0.1.1;
  direct;
  hold time 9;
  keepalive time 3;
  connect delay time 1;
  connect retry time 5;
  error wait time 2, 30;
  bfd { min rx interval 50 ms; min tx interval 50 ms; idle tx interval 50 ms; multiplier 5; };
  ipv4 {
    import none;
    export filter anycdn_export_peer3;
  };
}
`;

const LAB_EDGE = `# anycdn edge lab/lab-1, rendered by \`anycdn bgp render\` from the inventory.
listen: "[::]:8080"
upstream: http://shield.lab:8080
pop: lab
node: lab-1
cacheDir: /srv/cache
workers: 2
# After SIGTERM, health answers 503 this long while the edge still serves: the BGP agent
# sends the graceful-shutdown community, withdraws, and routers move clients away meanwhile.
drain: 12s
# Purges: the origin's purge stream (from the origin itself, even when upstream is a shield),
# followed with the edge token the origin has as \`edgeToken\`.
purgeFrom: http://origin.internal:8081
edgeToken: { env: EDGE_TOKEN }
`;

const LAB_AGENT = `# anycdn bgp agent beside edge lab/lab-1, rendered by \`anycdn bgp render\` from the inventory.
pop: lab
node: lab-1
health:
  url: http://[::1]:8080/_cdn/healthz
  interval: 500ms
  timeout: 250ms
  rise: 2
  fall: 3
damping: { maxFlips: 3, window: 90s, holdDown: 2m }
gracefulShutdown: 1.5s
bird:
  socket: /opt/anycdn/run/bird.ctl
  announceFile: /opt/anycdn/state/announce.conf
metrics: "[::1]:9200"
`;

const LAB_BIRD_UNIT = `[Unit]
Description=BIRD for anycdn: announces the anycast prefixes only while anycdn-bgp-agent says so
Documentation=man:bird(8)
After=network-online.target
Wants=network-online.target
# Stopped with the agent: with nobody to withdraw the route, BIRD must not keep announcing it.
BindsTo=anycdn-bgp-agent.service

[Service]
Type=simple
# BIRD writes its pid file after dropping to the bird user.
ExecStartPre=/usr/bin/install -d -o bird -g bird -m 0755 /opt/anycdn/run
# Fail-closed: every start begins withdrawn; the agent announces once the edge has proved healthy.
ExecStartPre=/usr/bin/install -D -m 0644 /opt/anycdn/etc/announce.conf /opt/anycdn/state/announce.conf
ExecStartPre=/usr/sbin/bird -p -c /opt/anycdn/etc/bird.conf
ExecStart=/usr/sbin/bird -f -u bird -g bird -c /opt/anycdn/etc/bird.conf -s /opt/anycdn/run/bird.ctl -P /opt/anycdn/run/bird.pid
# The announce decision lives in a file bird.conf includes, so a reconfiguration keeps it.
ExecReload=/usr/sbin/birdc -s /opt/anycdn/run/bird.ctl configure
Restart=on-failure
RestartSec=2

[Install]
WantedBy=multi-user.target
`;

const LAB_AGENT_UNIT = `[Unit]
Description=anycdn BGP agent: announces the anycast prefixes while the edge is healthy
Wants=anycdn-edge.service
Requires=anycdn-bird.service
After=network-online.target anycdn-bird.service anycdn-edge.service

[Service]
Type=simple
User=anycdn
Group=anycdn
# BIRD's control socket is bird:bird, mode 0660.
SupplementaryGroups=bird
ExecStart=/usr/bin/env anycdn bgp agent --config /opt/anycdn/etc/agent.yaml
# However the agent ends (stopped, crashed, killed), withdraw before anything else: BIRD must not
# keep announcing for an edge nobody watches. Restarted, the agent starts withdrawn.
ExecStopPost=/usr/bin/env anycdn bgp withdraw --config /opt/anycdn/etc/agent.yaml
# SIGTERM: the graceful-shutdown community for \`gracefulShutdown\`, then the withdrawal.
KillSignal=SIGTERM
TimeoutStopSec=22
Restart=always
RestartSec=2
ReadWritePaths=/opt/anycdn/state
NoNewPrivileges=true
ProtectSystem=strict
PrivateTmp=true

[Install]
WantedBy=multi-user.target
`;

describe('renderInventory: a lab node, whole files', () => {
  const files = byPath(renderInventory(inventory(LAB, { PW: 'pa ss' })));

  it('writes the seven files of the node and nothing else', () => {
    expect([...files.keys()]).toEqual([
      'lab/lab-1/bird.conf',
      'lab/lab-1/announce.conf',
      'lab/lab-1/edge.yaml',
      'lab/lab-1/agent.yaml',
      'lab/lab-1/anycdn-edge.service',
      'lab/lab-1/anycdn-bgp-agent.service',
      'lab/lab-1/anycdn-bird.service',
    ]);
  });

  it('bird.conf', () => {
    expect(files.get('lab/lab-1/bird.conf')).toEqual({ path: 'lab/lab-1/bird.conf', content: LAB_BIRD, mode: 0o640 });
  });

  it('announce.conf starts withdrawn', () => {
    expect(files.get('lab/lab-1/announce.conf')!.content).toBe(
      '# anycdn announce state: withdrawn. Rewritten by anycdn bgp agent, then BIRD reconfigured.\ndefine ANYCDN_ANNOUNCE = 0;\ndefine ANYCDN_GSHUT = 0;\n',
    );
  });

  it('edge.yaml, which the edge accepts', () => {
    const text = files.get('lab/lab-1/edge.yaml')!.content;
    expect(text).toBe(LAB_EDGE);
    const edge = validateConfig(edgeConfigSchema, parseConfigText('edge.yaml', text), 'edge.yaml', { EDGE_TOKEN: 'e'.repeat(32) });
    expect(edge.listen).toEqual({ host: '::', port: 8080 });
    // The stream from the origin, not from the PoP's shield.
    expect([edge.upstream, edge.purgeFrom, edge.edgeToken]).toEqual(['http://shield.lab:8080', 'http://origin.internal:8081', 'e'.repeat(32)]);
    expect(edge.drain).toBe(12_000);
    expect(edge.workers).toBe(2);
  });

  it('agent.yaml, which the agent accepts', () => {
    const text = files.get('lab/lab-1/agent.yaml')!.content;
    expect(text).toBe(LAB_AGENT);
    const agent = validateConfig(agentConfigSchema, parseConfigText('agent.yaml', text), 'agent.yaml', {});
    expect(agent.health).toEqual({ url: 'http://[::1]:8080/_cdn/healthz', interval: 500, timeout: 250, rise: 2, fall: 3 });
    expect(agent.damping).toEqual({ maxFlips: 3, window: 90_000, holdDown: 120_000 });
    expect(agent.gracefulShutdown).toBe(1500);
    expect(agent.metrics).toEqual({ host: '::1', port: 9200 });
  });

  it('the BIRD and agent units, tied together', () => {
    expect(files.get('lab/lab-1/anycdn-bird.service')!.content).toBe(LAB_BIRD_UNIT);
    expect(files.get('lab/lab-1/anycdn-bgp-agent.service')!.content).toBe(LAB_AGENT_UNIT);
  });
});

describe('renderInventory: health.stallLimit', () => {
  const agentYaml = (health: string) => byPath(renderInventory(inventory(LAB.replace('health: { interval: 500ms, timeout: 250ms, rise: 2, fall: 3 }', health), { PW: 'pw' }))).get('lab/lab-1/agent.yaml')!.content;
  const agentOf = (text: string) => validateConfig(agentConfigSchema, parseConfigText('agent.yaml', text), 'agent.yaml', {});

  it('is rendered into agent.yaml when the inventory sets it, and the agent takes it', () => {
    const text = agentYaml('health: { interval: 500ms, timeout: 250ms, rise: 2, fall: 3, stallLimit: 4500ms }');
    expect(text).toBe(LAB_AGENT.replace('  fall: 3\n', '  fall: 3\n  stallLimit: 4.5s\n'));
    const agent = agentOf(text);
    expect(agent.health.stallLimit).toBe(4500);
    expect(stallLimit(agent.health)).toBe(4500);
  });

  it('is left out otherwise, so the limit the agent uses follows fall × interval', () => {
    const text = agentYaml('health: { interval: 500ms, timeout: 250ms, rise: 2, fall: 3 }');
    expect(text).toBe(LAB_AGENT);
    expect(text).not.toContain('stallLimit');
    expect(stallLimit(agentOf(text).health)).toBe(1500);
    expect(stallLimit(agentOf(agentYaml('health: { interval: 1s, timeout: 1s, rise: 2, fall: 4 }')).health)).toBe(4000);
  });
});

describe('renderInventory: kernelImport', () => {
  const yaml = `
anycast: { prefixes: [203.0.113.0/24] }
origin: { url: http://origin.internal:8081 }
bfd: { enabled: false }
pops:
  - name: p
    asn: 65010
    nodes:
      - name: n
        routerId: 10.0.0.1
        kernelImport: true
        interfaces: [{ name: eth0, addresses: [10.0.0.1/30] }]
        neighbours: [{ address: 10.0.0.2, asn: 65020 }]
`;
  it('imports through a filter refusing our own prefixes, and exports only BGP routes to the kernel', () => {
    const bird = byPath(renderInventory(inventory(yaml))).get('p/n/bird.conf')!;
    expect(bird.mode).toBe(0o644);
    expect(bird.content).toBe(`# BIRD 2 configuration of anycdn node n in PoP p (AS65010).
# Rendered by \`anycdn bgp render\` from the inventory: change the inventory and render again.

log stderr all;
router id 10.0.0.1;

# ANYCDN_ANNOUNCE (0 withdrawn, 1 announced) and ANYCDN_GSHUT (1: graceful shutdown, RFC 8326),
# rewritten by anycdn bgp agent and read again on every \`configure\`.
include "/var/lib/anycdn-bgp/announce.conf";

define ANYCDN_ANYCAST4 = [ 203.0.113.0/24 ];

protocol device anycdn_device {
  scan time 10;
}

# The anycast prefixes, in BIRD's table only (no kernel protocol exports them).
protocol static anycdn_anycast4 {
  ipv4;
  route 203.0.113.0/24 blackhole;
}

# Routes learnt from neighbours go to the kernel (kernelImport); our own prefixes never do.
filter anycdn_import4 {
  if net ~ [ 203.0.113.0/24+ ] then reject;
  accept;
}

protocol kernel anycdn_kernel4 {
  ipv4 {
    import none;
    export where source = RTS_BGP;
  };
}

filter anycdn_export_peer1 {
  if ANYCDN_ANNOUNCE != 1 then reject;
  if proto != "anycdn_anycast4" then reject;
  if net !~ ANYCDN_ANYCAST4 then reject;
  if ANYCDN_GSHUT = 1 then bgp_community.add((65535, 0));
  accept;
}

protocol bgp anycdn_peer1 {
  description "10.0.0.2 AS65020";
  local as 65010;
  neighbor 10.0.0.2 as 65020;
  source address 10.0.0.1;
  hold time 90;
  connect delay time 5;
  connect retry time 30;
  error wait time 10, 300;
  ipv4 {
    import filter anycdn_import4;
    export filter anycdn_export_peer1;
  };
}
`);
  });
});

describe('the example inventory operators copy', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const text = readFileSync(`${root}deploy/inventory.example.yaml`, 'utf8');
  const inv = inventory(text, { ANYCDN_BGP_PASSWORD_AMS: 'example-password' });
  const files = byPath(renderInventory(inv));

  it('has three PoPs, two nodes in one of them', () => {
    expect(inv.pops.map((p) => [p.name, p.nodes.map((n) => n.name)])).toEqual([
      ['ams', ['ams-1', 'ams-2']],
      ['fra', ['fra-1']],
      ['sin', ['sin-1']],
    ]);
  });

  it.each(['ams/ams-1', 'ams/ams-2', 'fra/fra-1', 'sin/sin-1'])('%s: edge.yaml and agent.yaml are valid', (dir) => {
    const edge = validateConfig(edgeConfigSchema, parseConfigText('edge.yaml', files.get(`${dir}/edge.yaml`)!.content), 'edge.yaml', { ANYCDN_ADMIN_TOKEN: 'a'.repeat(32), ANYCDN_EDGE_TOKEN: 'e'.repeat(32) });
    expect(`${edge.pop}/${edge.node}`).toBe(dir);
    expect([edge.purgeFrom, edge.edgeToken, edge.adminToken]).toEqual(['https://origin.example.net:8081', 'e'.repeat(32), 'a'.repeat(32)]);
    expect(edge.drain).toBe(30_000);
    const agent = validateConfig(agentConfigSchema, parseConfigText('agent.yaml', files.get(`${dir}/agent.yaml`)!.content), 'agent.yaml', {});
    expect(agent.health.url).toBe('http://127.0.0.1:80/_cdn/healthz');
    expect(agent.bird).toEqual({ socket: '/run/anycdn-bird/bird.ctl', announceFile: '/var/lib/anycdn-bgp/announce.conf', commandTimeout: 5000 });
  });

  it('renders the units in deploy/systemd (one source for both)', () => {
    for (const unit of ['anycdn-edge.service', 'anycdn-bgp-agent.service', 'anycdn-bird.service']) {
      expect(files.get(`ams/ams-1/${unit}`)!.content, unit).toBe(readFileSync(`${root}deploy/systemd/${unit}`, 'utf8'));
    }
  });
});
