/**
 * BIRD prints "Last reboot" and "Last reconfiguration" as wall-clock times converted from its
 * monotonic clock on every `show status` (lib/timer.c, tm_format_time), so while NTP slews the
 * wall clock, or a VM's clock is corrected, the same boot is printed a millisecond apart every few
 * seconds. Seen in the lab: the agent took each such step for a restart and reconfigured BIRD
 * every 2–4 s. Here a fake BIRD on a unix socket drifts by 1 ms on every `show status`.
 */
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { startAgent } from '../../../bgp/agent.js';
import { agentConfigSchema } from '../../../bgp/agent-config.js';
import { createAgentMetrics } from '../../../bgp/agent-metrics.js';
import type { AnnounceState } from '../../../bgp/announce.js';
import { BirdControl } from '../../../bgp/bird-control.js';
import { CONFIGURED_REPLY, scripted, startFakeBird, statusReply, type FakeBird } from '../../support/fake-bird.js';
import { capturedLog } from '../../support/logs.js';
import { until } from '../../support/until.js';

const fakes: FakeBird[] = [];
afterAll(async () => {
  for (const f of fakes) await f.close();
});

/** A BIRD whose printed boot and reconfiguration times are `times()` on every `show status`. */
async function driftingBird(times: () => { reboot: string; reconfiguration: string }): Promise<FakeBird> {
  const fake = await startFakeBird(scripted((command) => (command === 'configure' ? CONFIGURED_REPLY : statusReply(times()))));
  fakes.push(fake);
  return fake;
}

/**
 * Runs the agent until `enough` holds (its `show status` calls counted, not a fixed time: a loaded
 * machine runs its 100 ms interval late), then stops it.
 */
async function runAgent(path: string, enough: () => boolean): Promise<{ messages: Record<string, unknown>[]; file: AnnounceState | undefined }> {
  const config = validateConfig(
    agentConfigSchema,
    // stallLimit: as in agent.test.ts, a loaded machine must not make this a stall test.
    { pop: 'lab', node: 'lab-1', health: { url: 'http://127.0.0.1:1/_cdn/healthz', interval: 100, timeout: 90, rise: 1, fall: 2, stallLimit: '2s' }, bird: { socket: path, announceFile: '/nonexistent/announce.conf' } },
    'agent.yaml',
    {},
  );
  const log = capturedLog('info');
  let file: AnnounceState | undefined;
  const bird = new BirdControl(path, { timeoutMs: 1000 });
  const agent = startAgent({
    config,
    logger: log.logger,
    metrics: createAgentMetrics({ pop: 'lab', node: 'lab-1' }),
    bird,
    probe: async () => ({ kind: 'ok' }),
    writeAnnounce: async (state) => {
      file = state;
    },
    readAnnounce: async () => file,
    now: () => performance.now(),
  });
  try {
    await until('enough `show status` calls', enough);
  } finally {
    agent.stop(true);
    await agent.done;
    bird.close();
  }
  return { messages: log.lines(), file };
}

describe('the agent and the times BIRD prints', () => {
  it('does not take a boot time printed a millisecond later for a restart', async () => {
    let calls = 0;
    const stamp = (ms: number): string => `2026-12-06 17:31:${String(35 + Math.floor(ms / 1000)).padStart(2, '0')}.${String(ms % 1000).padStart(3, '0')}`;
    const fake = await driftingBird(() => {
      calls++;
      return { reboot: stamp(270 + calls), reconfiguration: stamp(980 + calls) };
    });
    // More than ten statuses, each printing times a millisecond on.
    const { messages } = await runAgent(fake.path, () => calls > 10);
    // Withdrawn at start, announced after the first probe, withdrawn when stopped: three
    // `configure`s, however many times the printed times moved.
    expect(fake.commands.filter((c) => c === 'configure')).toHaveLength(3);
    expect(messages.filter((m) => m['msg'] === 'reasserted')).toEqual([]);
  });

  it('still tells a BIRD that really restarted (a boot time seconds later) the state again', async () => {
    let calls = 0;
    const fake = await driftingBird(() => {
      calls++;
      return calls < 8
        ? { reboot: '2026-12-06 17:31:35.270', reconfiguration: '2026-12-06 17:31:41.980' }
        : { reboot: '2026-12-06 17:31:44.102', reconfiguration: '2026-12-06 17:31:44.102' };
    });
    // Some statuses past the restart at the 8th.
    const { messages, file } = await runAgent(fake.path, () => calls > 10);
    const reasserts = messages.filter((m) => m['msg'] === 'reasserted');
    expect(reasserts.map((m) => [m['state'], m['reason']])).toEqual([['announced', 'BIRD restarted']]);
    expect(file).toBe('withdrawn');
  });
});
