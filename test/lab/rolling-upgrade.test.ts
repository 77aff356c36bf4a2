/**
 * The rolling upgrade of deploy/README.md ("Rolling upgrade"), performed on the lab: PoP after
 * PoP, drain, withdraw, stop, upgrade, start, health, rise, announce, check, next, while every
 * client network sends a request a connection every 20 ms. No request may fail, apart from one
 * caught mid-connection by its route moving away or back (see failover.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { labClock } from '../../deploy/lab/client-run.js';
import type { Lab } from '../../deploy/lab/lab.js';
import { answersBy, describeFailures, failedRequests, moveWindow, unexplainedFailures, type Window } from '../../deploy/lab/measure.js';
import { waitFor, waitForLog } from '../../deploy/lab/processes.js';
import { assertLabInCi, labForFile, noLab } from '../support/lab.js';

assertLabInCi();

async function commandLine(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
}

describe.skipIf(noLab !== undefined)(`anycast lab: rolling upgrade${noLab ? ` (skipped: ${noLab})` : ''}`, () => {
  let lab!: Lab;
  labForFile((started) => (lab = started), { restore: false });

  it('upgrades every PoP in turn under continuous requests without a failed request', async () => {
    const release = await lab.installRelease('next');
    const runs = lab.plan.clients.map((c) => lab.startClient(c.name));
    for (const run of runs) await lab.answeredBy(run, lab.servedBy(run.client.preference[0]!), 0, 10_000);
    const started = labClock();
    const moves: (Window | undefined)[] = [];

    for (const { name } of lab.plan.pops) {
      const node = lab.pop(name);
      const run = runs.find((r) => r.client.preference[0] === name)!;
      const fallback = run.client.preference[1]!;
      const [edge, agent, bird] = [node.edge!, node.agent!, node.bird!];
      const mark = await lab.logMark(agent);

      // Drain: the edge turns its health to 503 and keeps serving.
      const drained = labClock();
      edge.signal('SIGTERM');
      // Withdraw: the agent sees it, sends the graceful-shutdown community, withdraws.
      await waitForLog(agent, (l) => l['msg'] === 'announce state' && l['from'] === 'draining' && l['to'] === 'withdrawn', 10_000, mark);
      await lab.converged(10_000, [name]);
      await lab.answeredBy(run, lab.servedBy(fallback), drained, 5000);
      moves.push(moveWindow(run.records, lab.servedBy(name), lab.servedBy(fallback), drained));
      // Stop: the edge exits once its drain period is over; then the agent, and BIRD with it.
      expect(await edge.exited).toBe(0);
      await agent.stop();
      expect(await agent.exited).toBe(0);
      await bird.stop();
      expect(await lab.announceState(name)).toBe('withdrawn');

      // Upgrade, then start: BIRD (withdrawn), the edge, its health, the agent.
      lab.useRelease(name, release);
      await lab.startBird(name);
      const { listeningAt } = await lab.startEdge(name);
      const health = await lab.health(name);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', pop: name });
      const restarted = await lab.logMark(agent); // the new agent appends to the same log
      const newAgent = await lab.startAgent(name);
      // Rise, announce, check: the network that prefers this PoP is back on it.
      const announced = await waitForLog(newAgent, (l) => l['msg'] === 'announce state' && l['to'] === 'announced', 15_000, restarted);
      expect(announced['reason']).toBe(`healthy: ${lab.timings.health.rise} passing probes in a row`);
      await lab.answeredBy(run, lab.servedBy(name), listeningAt, 15_000);
      await lab.converged(15_000);
      moves.push(moveWindow(run.records, lab.servedBy(fallback), lab.servedBy(name), listeningAt));
      for (const d of [lab.pop(name).edge!, newAgent]) expect(await commandLine(d.pid)).toContain(release);
    }

    const finished = labClock();
    for (const run of runs) {
      const records = await run.stop();
      const failures = failedRequests(records, started);
      expect(unexplainedFailures(records, moves, started), `${run.client.name}: ${describeFailures(failures, started)}`).toEqual([]);
      // Each network was served throughout: by its nearest PoP, and by its fallback while that one was upgraded.
      const by = answersBy(records, started, finished);
      expect(Object.keys(by).sort()).toEqual([lab.servedBy(run.client.preference[0]!), lab.servedBy(run.client.preference[1]!)].sort());
    }
    // Every PoP runs the new release and is announced again.
    for (const { name } of lab.plan.pops) await waitFor(`${name} announced`, async () => ((await lab.announceState(name)) === 'announced' ? true : undefined), 5000);
  });
});
