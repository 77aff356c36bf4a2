/**
 * A hung PoP whose peers connect actively, as most real peers' routers do (failover.test.ts runs
 * the lab with passive client routers). While the PoP is frozen, every router reconnects to it
 * and the PoP's kernel completes the handshake, so BGP can be back the moment its BIRD resumes,
 * with the announce include still saying what the agent wanted before the freeze. What keeps the
 * clients away until the PoP is healthy is its agent: it notices that it did not run for longer
 * than fall × interval, withdraws, and announces only after `rise` passing probes.
 *
 * One window the agent cannot close: when the resumed BIRD reads a router's new connection before
 * the close of its old session, that session is Established within a millisecond of the thaw and
 * exports the route by the include of before the freeze, until the agent's withdrawal reaches
 * BIRD tens of milliseconds later (README, "Anycast"). The test allows that window, up to the
 * withdrawal BIRD confirmed plus SETTLE_MS, and asserts everything after it.
 *
 * Failures are counted as in failover.test.ts: only requests caught mid-connection by a route
 * move may fail.
 */
import { describe, expect, it } from 'vitest';
import { labClock } from '../../deploy/lab/client-run.js';
import { LAB_TIMINGS, type LabTimings } from '../../deploy/lab/inventory.js';
import type { Lab } from '../../deploy/lab/lab.js';
import { answersBy, describeAnswers, describeFailures, failedRequests, firstAnswerFrom, moves, succeeded, unexplainedFailures } from '../../deploy/lab/measure.js';
import { waitFor, waitForLog } from '../../deploy/lab/processes.js';
import { routerPeerProtocol } from '../../deploy/lab/router-config.js';
import { assertLabInCi, bystanders, labForFile, noLab } from '../support/lab.js';

assertLabInCi();

const ACTIVE_ROUTERS: LabTimings = { ...LAB_TIMINGS, sessions: { ...LAB_TIMINGS.sessions, routersPassive: false } };
const MOVE_BOUND_MS = 5000;
/** From the thaw until BIRD holds the agent's withdrawal (tens of ms measured; a loaded machine). */
const WITHDRAW_BOUND_MS = 1000;
/** A withdrawal BIRD holds reaches the routers' tables within this (milliseconds measured). */
const SETTLE_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(noLab !== undefined)(`anycast lab: a hung PoP, routers connecting actively${noLab ? ` (skipped: ${noLab})` : ''}`, () => {
  let lab!: Lab;
  labForFile((started) => (lab = started), { timings: ACTIVE_ROUTERS });

  it('withdraws the resumed PoP at once, keeps clients off it until rise passing probes, then moves them back once', async () => {
    const c = lab.plan.clients[1]!;
    const [near, next] = [c.preference[0]!, c.preference[1]!];
    const { interval, fall, rise } = lab.timings.health;
    const others = bystanders(lab, c.name);
    const run = lab.startClient(c.name);
    await lab.answeredBy(run, lab.servedBy(near), labClock(), 5000);
    const agent = lab.pop(near).agent!;
    const mark = await lab.logMark(agent);

    const frozen = labClock();
    lab.freeze(near);
    await lab.answeredBy(run, lab.servedBy(next), frozen, MOVE_BOUND_MS);
    const moved = firstAnswerFrom(run.records, frozen, lab.servedBy(next))!;
    // Every router has opened a new session to the frozen PoP, its TCP handshake completed by the
    // PoP's kernel (OPEN sent, waiting for the PoP's): BGP can come back at once after the thaw.
    const peer = routerPeerProtocol(near);
    await waitFor(
      'every router reconnected to the frozen PoP',
      async () => {
        for (const r of lab.plan.routers) if (!/BGP state:\s+OpenSent/.test(await lab.birdCommand(r.name, `show protocols all ${peer}`))) return undefined;
        return true;
      },
      15_000,
      50,
    );
    // And frozen for longer than the agent's stall limit.
    await sleep(Math.max(0, frozen + fall * interval + 500 - labClock()));

    // From the thaw until the agent announces, which router has a path from the PoP, and when.
    const thawed = labClock();
    lab.thaw(near);
    const seen: { router: string; at: number }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const r of lab.plan.routers) if ((await lab.pathsAt(r.name)).includes(near)) seen.push({ router: r.name, at: labClock() });
        await sleep(10);
      }
    })();
    let withdrawnAt: number;
    let announcedAt: number;
    try {
      const withdrawal = await waitForLog(agent, (l) => l['msg'] === 'announce state', 10_000, mark);
      expect([withdrawal['from'], withdrawal['to']]).toEqual(['announced', 'withdrawn']);
      expect(String(withdrawal['reason'])).toMatch(new RegExp(`^unhealthy: health unknown: the agent did not run for \\d+ ms \\(over the stall limit, ${fall * interval} ms\\)$`));
      const held = await waitForLog(agent, (l) => l['msg'] === 'BIRD holds the state', 10_000, mark);
      expect(held['state']).toBe('withdrawn');
      withdrawnAt = Date.parse(String(held['time']));
      const announced = await waitForLog(agent, (l) => l['msg'] === 'announce state' && l['to'] === 'announced', 20_000, mark);
      expect(announced['reason']).toBe(`healthy: ${rise} passing probes in a row`);
      announcedAt = Date.parse(String(announced['time']));
    } finally {
      watching = false;
      await watcher;
    }
    const rel = (t: number): string => `+${Math.round(t - thawed)} ms`;
    // The agent's first act after the thaw; its `rise` probes after it.
    expect(withdrawnAt - thawed, `withdrawn at ${rel(withdrawnAt)}`).toBeLessThan(WITHDRAW_BOUND_MS);
    // (Less a few milliseconds: the log's times are whole milliseconds of another clock.)
    expect(announcedAt - withdrawnAt, `withdrawn at ${rel(withdrawnAt)}, announced at ${rel(announcedAt)}`).toBeGreaterThanOrEqual((rise - 1) * interval - 20);
    // Once BIRD held the withdrawal (and routers had its update), no path from the PoP until
    // the agent announced. Before that, BIRD may have brought back a session the routers opened
    // during the freeze with the announce include of before it (README, "Anycast").
    const between = (t: number): boolean => t > withdrawnAt + SETTLE_MS && t < announcedAt;
    expect(seen.filter((p) => between(p.at)).map((p) => `${p.router} at ${rel(p.at)}`), `withdrawn at ${rel(withdrawnAt)}, announced at ${rel(announcedAt)}`).toEqual([]);

    const returned = await lab.answeredBy(run, lab.servedBy(near), announcedAt, 20_000);
    await lab.converged(15_000);
    // Longer than a BFD session left from before the freeze lives, with a BGP reconnect on top.
    await sleep(3000);
    const records = await run.stop();
    const tooSoon = records.filter((r) => between(r.start) && r.by === lab.servedBy(near));
    expect(tooSoon, describeAnswers(tooSoon, thawed)).toEqual([]);
    // Back once the agent announced, and for good: from its first answer after that, the PoP
    // answered every request.
    const strays = records.filter((r) => r.start >= returned.start && succeeded(r) && r.by !== lab.servedBy(near));
    expect(Object.keys(answersBy(records, returned.start)), describeAnswers(strays, thawed)).toEqual([lab.servedBy(near)]);
    // Failures only from the freeze until BFD moved the clients, or caught by a move after it.
    const after = moves(records, frozen + moved);
    expect(unexplainedFailures(records, after, frozen + moved), describeFailures(failedRequests(records, frozen + moved), frozen)).toEqual([]);
    await others.check(frozen);
  });
});
