/**
 * Whether the anycast lab (deploy/lab/) can run here: root, network namespaces, BIRD 2 and a
 * build. Lab tests skip with the reason otherwise, except under CI=true, where a lab that cannot
 * run is a failure (.ci/run installs bird2 and iproute2 and runs as root).
 */
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { labPrerequisites, ROOT } from '../../deploy/lab/checkout.js';
import type { Lab } from '../../deploy/lab/lab.js';
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
