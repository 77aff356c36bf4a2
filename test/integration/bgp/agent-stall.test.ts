/**
 * The agent after a stall: its process did not run for longer than fall × interval (a hung host
 * stopped and resumed). It must withdraw at once and announce again only after `rise` passing
 * probes, none of them sent before the stall. In the first test the agent's clock is the test's:
 * it moves 5 ms every 5 ms this process runs (so a loaded machine is no stall), and a jump of it
 * is a stall as the agent sees it (its watchdog's tick comes seconds late); the probe is the
 * test's, held open across the jump. In the second the process really does not run. BIRD is a
 * fake on a unix socket that records what the include said at every `configure`.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { startAgent } from '../../../bgp/agent.js';
import { agentConfigSchema } from '../../../bgp/agent-config.js';
import { createAgentMetrics } from '../../../bgp/agent-metrics.js';
import type { AnnounceState } from '../../../bgp/announce.js';
import { BirdControl } from '../../../bgp/bird-control.js';
import type { ProbeResult } from '../../../bgp/hysteresis.js';
import { metricValue } from '../../support/edge.js';
import { CONFIGURED_REPLY, scripted, startFakeBird, statusReply, type FakeBird } from '../../support/fake-bird.js';
import { capturedLog } from '../../support/logs.js';

const fakes: FakeBird[] = [];
afterAll(async () => {
  for (const f of fakes) await f.close();
});

/** A BIRD that answers `show status` with one boot and calls `configured` on every `configure`. */
async function fakeBird(configured: () => void): Promise<string> {
  const fake = await startFakeBird(
    scripted((command) => {
      if (command !== 'configure') return statusReply({ reboot: '2026-12-06 17:31:35.270', reconfiguration: '2026-12-06 17:31:35.270' });
      configured();
      return CONFIGURED_REPLY;
    }),
  );
  fakes.push(fake);
  return fake.path;
}

async function until<T>(what: string, read: () => T, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the agent after a stall', () => {
  it('withdraws at once, ignores the probe it sent before, and announces after rise new passes', async () => {
    // What the include said at each `configure`, in order.
    const told: AnnounceState[] = [];
    let file: AnnounceState | undefined;
    const path = await fakeBird(() => told.push(file!));
    // interval 100 ms, fall 2: a stall is a gap over 200 ms.
    const config = validateConfig(
      agentConfigSchema,
      { pop: 'lab', node: 'lab-1', health: { url: 'http://127.0.0.1:1/_cdn/healthz', interval: 100, timeout: 90, rise: 2, fall: 2 }, bird: { socket: path, announceFile: '/nonexistent/announce.conf' } },
      'agent.yaml',
      {},
    );
    const log = capturedLog('debug');
    const messages = log.lines();
    let clock = 0;
    const ticking = setInterval(() => (clock += 5), 5);
    // The probe: `ok` at once, unless the test holds the next one open (answered when it says).
    let held: ((r: ProbeResult) => void) | undefined;
    let holding = false;
    let probes = 0;
    let heldProbe = 0;
    const metrics = createAgentMetrics({ pop: 'lab', node: 'lab-1' });
    const bird = new BirdControl(path, { timeoutMs: 1000 });
    const agent = startAgent({
      config,
      logger: log.logger,
      metrics,
      bird,
      probe: () => {
        probes++;
        if (!holding) return Promise.resolve({ kind: 'ok' });
        holding = false;
        heldProbe = probes;
        return new Promise<ProbeResult>((resolve) => (held = resolve));
      },
      writeAnnounce: async (state) => {
        file = state;
      },
      readAnnounce: async () => file,
      now: () => clock,
    });
    try {
      await until('announced', () => told, (t) => t.at(-1) === 'announced');
      expect(told).toEqual(['withdrawn', 'announced']);

      // A probe goes out and the process "stops": its clock jumps by 5 s while the probe is open.
      holding = true;
      await until('a probe held open', () => held, (h) => h !== undefined);
      clock += 5000;
      // The watchdog's next tick sees the gap: withdrawn without waiting for the open probe.
      await until('withdrawn after the stall', () => told, (t) => t.at(-1) === 'withdrawn');
      expect(told).toEqual(['withdrawn', 'announced', 'withdrawn']);
      expect(agent.state().announce).toBe('withdrawn');
      // The open probe now says ok (an answer from before the stall): it does not count. It
      // takes two probes sent after the stall (rise 2) to announce again.
      held!({ kind: 'ok' });
      await until('announced again', () => told, (t) => t.at(-1) === 'announced');
      expect(told).toEqual(['withdrawn', 'announced', 'withdrawn', 'announced']);
      expect(probes).toBeGreaterThanOrEqual(heldProbe + 2);
    } finally {
      agent.stop(true);
      await agent.done;
      bird.close();
      clearInterval(ticking);
    }

    const stalled = messages.filter((m) => m['msg'] === 'the agent did not run: edge health unknown until rise passing probes');
    expect(stalled).toHaveLength(1);
    expect(stalled[0]!['limitMs']).toBe(200);
    expect(stalled[0]!['gapMs']).toBeGreaterThanOrEqual(5000);
    const transitions = messages.filter((m) => m['msg'] === 'announce state').map((m) => [m['from'], m['to'], String(m['reason']).replace(/\d+ ms \(/, 'N ms (')]);
    expect(transitions).toEqual([
      ['withdrawn', 'announced', 'healthy: 2 passing probes in a row'],
      ['announced', 'withdrawn', 'unhealthy: health unknown: the agent did not run for N ms (over the stall limit, 200 ms)'],
      ['withdrawn', 'announced', 'healthy: 2 passing probes in a row'],
      ['announced', 'withdrawn', 'agent stopping at once'],
    ]);
    expect(metricValue(await metrics.registry.metrics(), 'anycdn_bgp_agent_stalls_total', {})).toBe(1);
  });

  it('a process that really did not run (its event loop blocked past the stall limit) withdraws, then announces again', async () => {
    const told: AnnounceState[] = [];
    let file: AnnounceState | undefined;
    const path = await fakeBird(() => told.push(file!));
    // A stall limit of 1 s, not the default 200 ms: on a loaded machine this process can go
    // unscheduled for more than 200 ms on its own.
    const config = validateConfig(
      agentConfigSchema,
      { pop: 'lab', node: 'lab-1', health: { url: 'http://127.0.0.1:1/_cdn/healthz', interval: 100, timeout: 90, rise: 2, fall: 2, stallLimit: '1s' }, bird: { socket: path, announceFile: '/nonexistent/announce.conf' } },
      'agent.yaml',
      {},
    );
    const metrics = createAgentMetrics({ pop: 'lab', node: 'lab-1' });
    const bird = new BirdControl(path, { timeoutMs: 1000 });
    const agent = startAgent({
      config,
      logger: createLogger({ level: 'silent' }),
      metrics,
      bird,
      probe: async () => ({ kind: 'ok' }),
      writeAnnounce: async (state) => {
        file = state;
      },
      readAnnounce: async () => file,
      now: () => performance.now(),
    });
    try {
      await until('announced', () => told, (t) => t.at(-1) === 'announced');
      // Nothing in this process runs for 2 s: as for a stopped process, every timer is late.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000);
      await until('withdrawn, then announced again', () => told, (t) => t.length >= 4);
      expect(told.slice(0, 4)).toEqual(['withdrawn', 'announced', 'withdrawn', 'announced']);
    } finally {
      agent.stop(true);
      await agent.done;
      bird.close();
    }
    expect(metricValue(await metrics.registry.metrics(), 'anycdn_bgp_agent_stalls_total', {})).toBe(1);
  });
});
