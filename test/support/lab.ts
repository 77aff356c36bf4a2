/**
 * Whether the anycast lab (deploy/lab/) can run here: root, network namespaces, BIRD 2 and a
 * build. Lab tests skip with the reason otherwise, except under CI=true, where a lab that cannot
 * run is a failure (.ci/run installs bird2 and iproute2 and runs as root). Also what the lab's
 * test files share: one lab per file, and the check of the client networks a scenario leaves alone.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { labPrerequisites, ROOT } from '../../deploy/lab/checkout.js';
import { Lab, type LabOptions } from '../../deploy/lab/lab.js';
import { answersBy, describeAnswers, describeFailures, failedRequests, succeeded } from '../../deploy/lab/measure.js';
import { labUnavailable } from '../../deploy/lab/netns.js';

export const noLab: string | undefined = labPrerequisites() ?? (await labUnavailable());

/**
 * For the hook that starts a lab (beforeAll): 10–20 s on an idle machine, but 2–3 minutes were
 * seen on a loaded 2-core one (load 13, the lab run with nice 10), past the project's 120 s hook
 * timeout. A start cut short by the timeout leaves its daemons to the next lab's clean-up and
 * fails every test of the file.
 */
export const LAB_START_TIMEOUT_MS = 360_000;

export function assertLabInCi(): void {
  if (process.env['CI'] === 'true' && noLab !== undefined) throw new Error(`CI=true but the lab cannot run: ${noLab}`);
}

/**
 * Stops the lab in afterAll; when a test of the file failed, its logs and configs are kept in
 * .tmp/lab-logs/<lab id>/ first (and the path printed); with ANYCDN_LAB_KEEP_LOGS=1, after a
 * passing run too (to study one). Call at the top of the describe block.
 */
export function keepLogsOnFailure(): { stop(lab: Lab | undefined): Promise<void> } {
  let failed = false;
  afterEach((context) => {
    if (context.task.result?.state === 'fail') failed = true;
  });
  return {
    async stop(lab) {
      if (lab === undefined) return;
      const dir = failed || process.env['ANYCDN_LAB_KEEP_LOGS'] === '1' ? join(ROOT, '.tmp', 'lab-logs', lab.plan.id) : undefined;
      await lab.stop(dir);
      if (dir !== undefined) process.stderr.write(`lab logs kept in ${dir}\n`);
    },
  };
}

/**
 * One lab for the test file (call at the top of its describe block): started before its tests
 * with `options`, handed to `started`; after each test the clients are stopped and, with
 * `restore` (default true), every PoP frozen or stopped is brought back, so the next scenario
 * starts from the whole lab even when one failed half-way; stopped after the tests, its logs kept
 * when one failed (keepLogsOnFailure).
 */
export function labForFile(started: (lab: Lab) => void, options: LabOptions & { restore?: boolean } = {}): void {
  const { restore = true, ...labOptions } = options;
  let lab: Lab | undefined;
  const logs = keepLogsOnFailure();
  beforeAll(async () => {
    lab = await Lab.start(labOptions);
    started(lab);
  }, LAB_START_TIMEOUT_MS);
  afterAll(async () => {
    await logs.stop(lab);
  });
  afterEach(async () => {
    await lab?.stopClients();
    if (restore) await lab?.restore();
  });
}

/**
 * Clients in every network but `except`'s, a connection per request every 50 ms. `check(at)`
 * stops them and asserts that each saw no failed request and only its nearest PoP (`at`: the
 * event the failure and answer descriptions are timed from).
 */
export function bystanders(lab: Lab, except: string): { check(at?: number): Promise<void> } {
  const runs = lab.plan.clients.filter((c) => c.name !== except).map((c) => lab.startClient(c.name, { interval: 50 }));
  return {
    async check(at = 0) {
      for (const run of runs) {
        const records = await run.stop();
        expect(failedRequests(records), `${run.client.name}: ${describeFailures(failedRequests(records), at)}`).toEqual([]);
        const near = lab.servedBy(run.client.preference[0]!);
        const strays = records.filter((r) => succeeded(r) && r.by !== near);
        expect(Object.keys(answersBy(records)), `${run.client.name}: ${describeAnswers(strays, at)}`).toEqual([near]);
      }
    },
  };
}
