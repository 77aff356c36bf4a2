/**
 * Anycast failover times in the lab (deploy/lab/): real BIRD daemons, edges and agents in network
 * namespaces, clients in their own networks requesting through the anycast address.
 *
 *   npm run bench:failover -- [--runs 10] [--only crash,hung,drain] [--without-bfd]
 *
 * Three scenarios, `--runs` times each, turn by turn on the three PoPs (the client network that
 * prefers the PoP is the one measured; the other two keep requesting and must see nothing):
 *
 * - edge crash: SIGKILL to the edge. Time from the kill to the first answer from the next PoP
 *   (the agent sees `fall` failed probes, withdraws; the router moves the route). Then the edge
 *   is started again: time from its listening to the first answer from it (`rise` probes).
 * - hung PoP: SIGSTOP to the PoP's BIRD, edge and agent (a frozen host). Time from the freeze to
 *   the first answer from the next PoP: the routers' BFD notices, not the 90 s BGP hold time.
 * - planned drain: SIGTERM to the edge, with a client opening a connection per request and a
 *   keep-alive client retrying a failed request once. Time from the signal to the first answer
 *   from the next PoP, and the requests that failed.
 *
 * A failed request is counted as "caught by the move" (away, or back when the PoP returns) when
 * its connection was opened towards one PoP and reset by the next (measure.ts `caughtByMove`): in
 * flight at the instant the route moved. "Slow" counts requests that succeeded after a second or
 * more: a SYN that went unanswered and was sent again (the client's timeout is 2 s).
 *
 * `--without-bfd` adds one hung-PoP run on a lab whose sessions have no BFD (90 s hold time):
 * what BFD saves. It takes two minutes.
 *
 * Targets: edge crash to traffic moved under 2 s, hung PoP under 1 s with BFD, zero failed
 * requests in a drain. Writes test/bench/results/failover-<date>.json and prints the tables.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LAB_TIMINGS } from '../../deploy/lab/inventory.js';
import { labClock } from '../../deploy/lab/client-run.js';
import { Lab } from '../../deploy/lab/lab.js';
import { caughtByMove, describeFailures, failedRequests, firstAnswerFrom, moveWindow, quantile, unrecovered, type ClientRecord, type Window } from '../../deploy/lab/measure.js';
import { fixed, loadAverage, machineReport, REPO_ROOT, table } from './bench-lib.js';

interface Run {
  pop: string;
  /** Event → first answer from the next PoP, ms. */
  movedMs: number;
  /** The PoP back → first answer from it again, ms (crash: from the new edge's listening; hung: from the thaw). */
  backMs?: number;
  /** Failed first attempts of the measured client from the event on (crash, hung: from the move). */
  failed: number;
  /** Of those, caught mid-connection by the route moving away, and by it moving back. */
  caughtAway: number;
  caughtBack: number;
  /** Drain only: the keep-alive client's failed attempts, and requests still failed after one retry. */
  keepAliveFailed?: number;
  keepAliveUnrecovered?: number;
  /** Successful requests sent from the event on that took a second or more (a SYN sent again). */
  slow: number;
  /** Failures seen by the two other client networks (must be 0). */
  bystanderFailed: number;
  /** Every failure, times relative to the event (measure.ts describeFailures). */
  failures: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function caught(records: readonly ClientRecord[], move: Window | undefined, from: number): number {
  return move === undefined ? 0 : failedRequests(records, from).filter((r) => caughtByMove(r, move)).length;
}

async function scenario(lab: Lab, kind: 'crash' | 'hung' | 'drain', turn: number): Promise<Run> {
  const client = lab.plan.clients[turn % lab.plan.clients.length]!;
  const [near, next] = [client.preference[0]!, client.preference[1]!];
  const bystanders = lab.plan.clients.filter((c) => c !== client).map((c) => lab.startClient(c.name, { interval: 50 }));
  const run = lab.startClient(client.name, { interval: 10, timeout: 2000 });
  const kept = kind === 'drain' ? lab.startClient(client.name, { interval: 10, keepAlive: true, retry: true }) : undefined;
  for (const r of [run, kept, ...bystanders]) if (r !== undefined) await lab.answeredBy(r, lab.servedBy(r.client.preference[0]!), 0, 10_000);
  await sleep(300);
  const node = lab.pop(near);
  const at = labClock();
  if (kind === 'crash') node.edge!.signal('SIGKILL');
  else if (kind === 'hung') lab.freeze(near);
  else node.edge!.signal('SIGTERM');
  await lab.answeredBy(run, lab.servedBy(next), at, 120_000);
  const movedMs = firstAnswerFrom(run.records, at, lab.servedBy(next))!;
  const away = kind === 'drain' ? moveWindow(run.records, lab.servedBy(near), lab.servedBy(next), at) : undefined;

  let backMs: number | undefined;
  let back: Window | undefined;
  if (kind === 'hung') {
    const thawed = labClock();
    lab.thaw(near);
    await lab.answeredBy(run, lab.servedBy(near), thawed, 60_000);
    backMs = firstAnswerFrom(run.records, thawed, lab.servedBy(near));
    back = moveWindow(run.records, lab.servedBy(next), lab.servedBy(near), thawed);
  } else {
    if (kind === 'drain') await node.edge!.exited;
    await sleep(200);
    const { listeningAt } = await lab.startEdge(near);
    await lab.answeredBy(run, lab.servedBy(near), listeningAt, 60_000);
    backMs = firstAnswerFrom(run.records, listeningAt, lab.servedBy(near));
    back = moveWindow(run.records, lab.servedBy(next), lab.servedBy(near), listeningAt);
  }
  await lab.converged(30_000);
  await sleep(300);
  const records = await run.stop();
  // From the event until the route has moved away, a crashed or frozen PoP fails requests by
  // nature; counted from then on (a drain: from the event itself).
  const from = kind === 'drain' ? at : at + movedMs;
  const result: Run = {
    pop: near,
    movedMs,
    backMs,
    failed: failedRequests(records, from).length,
    caughtAway: caught(records, away, from),
    caughtBack: caught(records, back, from),
    slow: records.filter((r) => r.start >= from && r.end - r.start >= 1000 && r.error === undefined).length,
    bystanderFailed: 0,
    failures: [],
  };
  const note = (who: string, failed: ClientRecord[]): void => {
    if (failed.length > 0) result.failures.push(`${who}: ${describeFailures(failed, at)}`);
  };
  note(`${client.name} per request`, failedRequests(records, from));
  if (away !== undefined) result.failures.push(`away ${Math.round(away.from - at)}..${Math.round(away.to - at)}`);
  if (back !== undefined) result.failures.push(`back ${Math.round(back.from - at)}..${Math.round(back.to - at)}`);
  if (kept !== undefined) {
    const keptRecords = await kept.stop();
    result.keepAliveFailed = failedRequests(keptRecords, at).length;
    result.keepAliveUnrecovered = unrecovered(keptRecords, at).length;
    note(`${client.name} keep-alive`, failedRequests(keptRecords, at));
  }
  for (const b of bystanders) {
    const failed = failedRequests(await b.stop());
    result.bystanderFailed += failed.length;
    note(`${b.client.name} (bystander)`, failed);
  }
  return result;
}

function summary(name: string, runs: Run[], target: string): string[] {
  const moved = runs.map((r) => r.movedMs);
  const back = runs.map((r) => r.backMs).filter((v): v is number => v !== undefined);
  const sum = (f: (r: Run) => number | undefined): number => runs.reduce((s, r) => s + (f(r) ?? 0), 0);
  return [
    name,
    String(runs.length),
    fixed(quantile(moved, 0.5)!, 0),
    fixed(Math.max(...moved), 0),
    back.length === 0 ? '-' : `${fixed(quantile(back, 0.5)!, 0)} / ${fixed(Math.max(...back), 0)}`,
    `${sum((r) => r.failed)} (${sum((r) => r.caughtAway)} + ${sum((r) => r.caughtBack)})`,
    String(sum((r) => r.slow)),
    runs[0]?.keepAliveFailed === undefined ? '-' : `${sum((r) => r.keepAliveFailed)} / ${sum((r) => r.keepAliveUnrecovered)}`,
    String(sum((r) => r.bystanderFailed)),
    target,
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '10' }, only: { type: 'string', default: 'crash,hung,drain' }, 'without-bfd': { type: 'boolean', default: false } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new Error('--runs: 1 to 100');
  const kinds = values.only.split(',');
  for (const kind of kinds) if (!['crash', 'hung', 'drain'].includes(kind)) throw new Error(`--only: crash, hung and/or drain, got ${kind}`);
  for (const line of await machineReport()) console.log(line);
  const timings = LAB_TIMINGS;
  console.log(
    `lab timings: health every ${timings.health.interval} ms (timeout ${timings.health.timeout} ms), rise ${timings.health.rise}, fall ${timings.health.fall}; ` +
      `BFD ${timings.bfd.interval} ms x ${timings.bfd.multiplier}; hold time ${timings.sessions.holdTime / 1000} s; drain ${timings.drain.time} ms (graceful shutdown ${timings.drain.gracefulShutdown} ms)`,
  );
  const results: Record<string, Run[]> = { crash: [], hung: [], drain: [] };
  const lab = await Lab.start({ log: (line) => console.log(line) });
  try {
    for (const kind of kinds as ('crash' | 'hung' | 'drain')[]) {
      for (let i = 0; i < runs; i++) {
        const r = await scenario(lab, kind, i);
        results[kind]!.push(r);
        console.log(`${kind} ${i + 1}/${runs} ${r.pop}: moved ${fixed(r.movedMs, 0)} ms, back ${fixed(r.backMs ?? NaN, 0)} ms, failed ${r.failed} (caught by the move away ${r.caughtAway}, back ${r.caughtBack}), slow ${r.slow}` +
          (r.keepAliveFailed === undefined ? '' : `, keep-alive failed ${r.keepAliveFailed}, unrecovered ${r.keepAliveUnrecovered}`) + `, bystanders failed ${r.bystanderFailed}; load ${loadAverage()}`);
        for (const line of r.failures) console.log(`  ${line}`);
        await lab.restore();
      }
    }
  } finally {
    await lab.stop();
  }
  let withoutBfd: Run | undefined;
  if (values['without-bfd']) {
    const plain = await Lab.start({ timings: { ...timings, bfd: { ...timings.bfd, enabled: false } }, log: (line) => console.log(line) });
    try {
      withoutBfd = await scenario(plain, 'hung', 0);
      console.log(`hung without BFD ${withoutBfd.pop}: moved ${fixed(withoutBfd.movedMs, 0)} ms`);
    } finally {
      await plain.stop();
    }
  }
  console.log('');
  console.log(
    table(
      ['scenario', 'runs', 'moved p50 ms', 'moved max ms', 'back p50 / max ms', 'failed (caught by the move away + back)', 'slow ≥ 1 s', 'keep-alive failed / after retry', 'bystanders failed', 'target'],
      [
        ...(results['crash']!.length === 0 ? [] : [summary('edge crash (SIGKILL)', results['crash']!, 'moved < 2000 ms')]),
        ...(results['hung']!.length === 0 ? [] : [summary('hung PoP (SIGSTOP), BFD', results['hung']!, 'moved < 1000 ms')]),
        ...(results['drain']!.length === 0 ? [] : [summary('planned drain (SIGTERM)', results['drain']!, '0 failed')]),
        ...(withoutBfd === undefined ? [] : [summary('hung PoP, no BFD', [withoutBfd], 'minutes')]),
      ],
    ),
  );
  console.log(`load average at end: ${loadAverage()}`);
  const dir = join(REPO_ROOT, 'test/bench/results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `failover-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ timings, results, withoutBfd }, null, 2));
  console.log(`results: ${file}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
