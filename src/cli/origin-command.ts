/**
 * `anycdn origin --config FILE`: run the origin until SIGTERM/SIGINT, then shut down gracefully
 * (drain, close). A signal that comes while it starts is acted on once it is up; one that comes
 * before it began to start ends the command there, with nothing started. SIGUSR1 reopens the
 * access log file (log rotation); SIGHUP reloads the TLS certificates and ticket keys.
 */
import { loadConfigFile } from '../config/load.js';
import { createLogger, lifecycleLogStream } from '../log.js';
import { originConfigSchema } from '../../origin/config.js';
import { startOrigin } from '../../origin/server.js';
import { holdSignal, parseFlags, UsageError, type ServiceCommand } from './args.js';

const USAGE = `Usage: anycdn origin --config FILE

Runs the origin server: publisher API, originals and image variants.
The config file is YAML or JSON; see README "For operators" for every key.

Options:
  -c, --config FILE   configuration file (required)
  -h, --help          show this help`;

export const runOrigin: ServiceCommand = async (args, io) => {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } }, USAGE);
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${USAGE}`);
  const config = await loadConfigFile(originConfigSchema, values.config, io.env);
  const destination = lifecycleLogStream(config.accessLog) === 'stderr' ? io.stderr : io.stdout;
  const logger = createLogger({ level: config.logLevel, base: { service: 'origin' }, destination });
  const { concurrency } = config.images;
  const threadPool = Number(io.env.UV_THREADPOOL_SIZE ?? 4);
  if (concurrency + 2 > threadPool) {
    logger.warn({ concurrency, threadPool }, 'transforms can take every libuv pool thread, and file I/O waits for them: set UV_THREADPOOL_SIZE to at least images.concurrency + 2');
  }
  // Taken from the start (Node's own answers: open its inspector, end the process), acted on once up.
  const reopen = holdSignal('SIGUSR1');
  const reload = holdSignal('SIGHUP');
  const released = (): void => {
    reopen.release();
    reload.release();
  };
  const { signals } = io;
  if (signals.count > 0) {
    logger.info('stopped before start-up');
    released();
    return 0;
  }
  const origin = await startOrigin(config, logger);
  reopen.actWith(() => {
    logger.info('SIGUSR1: reopening the access log');
    void origin.reopenLogs();
  });
  reload.actWith(() => {
    logger.info('SIGHUP: reloading certificates and ticket keys');
    void origin.reloadTls();
  });
  const signal = await signals.nth(1);
  logger.info({ signal, drainMs: config.drain }, 'shutting down');
  origin.drain();
  if (config.drain > 0) {
    // A second signal cuts the drain short.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, config.drain))), signals.nth(2)]);
    clearTimeout(timer);
  }
  // Closing finishes the requests in flight; a signal now ends the process at once.
  signals.stop();
  await origin.close(10_000);
  released();
  return 0;
};
