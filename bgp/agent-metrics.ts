/**
 * The agent's Prometheus metrics, in its own registry, and the small loopback listener that
 * serves them (`GET /metrics`; anything else 404). The words are the agent's: probe results
 * ok/fail/draining, announce states withdrawn/announced/draining.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from '../src/prom-parts.js';
import type { ListenAddress } from '../src/config/common.js';
import { ANNOUNCE_STATES, type AnnounceState } from './announce.js';

export interface AgentMetrics {
  registry: Registry;
  probes: Counter<'result'>;
  probeSeconds: Histogram;
  healthy: Gauge;
  announce: Gauge<'state'>;
  transitions: Counter<'to'>;
  heldDown: Gauge;
  birdUp: Gauge;
  birdCommands: Counter<'command' | 'result'>;
  reasserts: Counter<'reason'>;
  stalls: Counter;
  setAnnounce(state: AnnounceState): void;
}

export function createAgentMetrics(labels: { pop: string; node: string }): AgentMetrics {
  const registry = new Registry();
  registry.setDefaultLabels(labels);
  const registers = [registry];
  const announce = new Gauge({ name: 'anycdn_bgp_announce_state', help: 'What the agent has BIRD announce: 1 for the current state (withdrawn, announced, draining)', labelNames: ['state'], registers });
  const metrics: AgentMetrics = {
    registry,
    probes: new Counter({ name: 'anycdn_bgp_probes_total', help: 'Health probes of the edge by result (ok, fail, draining)', labelNames: ['result'], registers }),
    probeSeconds: new Histogram({ name: 'anycdn_bgp_probe_duration_seconds', help: 'Time to a health probe result', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers }),
    healthy: new Gauge({ name: 'anycdn_bgp_edge_healthy', help: '1 when the edge is judged healthy (after rise passing probes)', registers }),
    announce,
    transitions: new Counter({ name: 'anycdn_bgp_transitions_total', help: 'Changes of the announce state, by the state entered', labelNames: ['to'], registers }),
    heldDown: new Gauge({ name: 'anycdn_bgp_held_down', help: '1 while flap damping holds the node withdrawn', registers }),
    birdUp: new Gauge({ name: 'anycdn_bgp_bird_up', help: "1 when BIRD's control socket answered the last command", registers }),
    birdCommands: new Counter({ name: 'anycdn_bgp_bird_commands_total', help: 'Commands sent to BIRD by command and result (ok, error, unreachable)', labelNames: ['command', 'result'], registers }),
    reasserts: new Counter({ name: 'anycdn_bgp_reasserts_total', help: 'Times the wanted state was told to BIRD again without a change (BIRD restarted, reconfigured, file changed)', labelNames: ['reason'], registers }),
    stalls: new Counter({ name: 'anycdn_bgp_agent_stalls_total', help: 'Times the agent found it had not run for longer than its stall limit (health.stallLimit, fall x interval by default: a stopped or starved host) and made the health unknown', registers }),
    setAnnounce(state) {
      for (const s of ANNOUNCE_STATES) announce.set({ state: s }, s === state ? 1 : 0);
    },
  };
  metrics.setAnnounce('withdrawn');
  return metrics;
}

/** Serve `GET /metrics` on `listen`; resolves with the bound address. */
export async function serveMetrics(registry: Registry, listen: ListenAddress): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.maxConnections = 16;
  server.headersTimeout = 5000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, address: server.address() as AddressInfo };
}
