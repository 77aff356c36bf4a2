/**
 * Helper process for the kill -9 test of the purge log (purge-log.test.ts): opens the log in
 * <dir> and appends purges in bursts of concurrent appends, forever, printing `acked <seq>` for
 * each purge once `append` resolved (it is durable then). The test kills it by PID mid-burst.
 * Runs compiled, from dist/test/integration/purge/purge-log-writer.js.
 */
import { fileURLToPath } from 'node:url';
import { PurgeLog } from '../../../origin/purge/purge-log.js';

async function main(): Promise<void> {
  const [dir] = process.argv.slice(2);
  if (dir === undefined) throw new Error('usage: purge-log-writer <dir>');
  const log = await PurgeLog.open({ dir, retain: { entries: 1_000_000, bytes: 1024 ** 3 } });
  for (let burst = 0; ; burst++) {
    const appends = Array.from({ length: 20 }, (_, i) =>
      log.append({ urls: [{ path: `/burst-${burst}/file-${i}.jpg` }], prefixes: [], tags: [`t${i}`], all: false, soft: false }, 'api').then((e) => {
        process.stdout.write(`acked ${e.seq}\n`);
      }),
    );
    await Promise.all(appends);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
