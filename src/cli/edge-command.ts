/**
 * `anycdn edge --config FILE`: run an edge until SIGTERM/SIGINT. The first signal drains (health
 * 503 for the configured period while still serving, then a graceful close); a second one exits
 * at once. A signal that comes while it starts is acted on once it is up; one that comes before
 * it began to start ends the command there, with nothing started. SIGUSR1 reopens the access log
 * file (log rotation, as nginx does); SIGHUP reloads the TLS certificates and ticket keys.
 */
import { readConfigFile } from '../config/config-file.js';
import { lazy } from '../lazy.js';
import type { Logger } from '../log.js';
import type { EdgeConfig } from '../../edge/config.js';
import { forkEdgeCluster, workersAsked } from '../../edge/cluster.js';
import { isEdgeWorker } from '../../edge/cluster-protocol.js';
import { runEdgeWorker } from '../../edge/cluster-worker.js';
import { holdSignal, parseFlags, UsageError, type CommandIo, type ServiceCommand } from './args.js';

// A cluster worker takes its config from its primary and loads the server itself once it may
// start (edge/cluster.ts); only a primary or a single process reads and validates the file, and a
// primary forks its first worker before it loads the validator.
const configValidation = lazy(() => Promise.all([import('../config/load.js'), import('../../edge/config.js')]));
// The logger (pino) comes with the config, after the fork.
const logging = lazy(() => import('../log.js'));
const edgeServer = lazy(() => import('../../edge/server.js'));

const USAGE = `Usage: anycdn edge --config FILE

Runs an edge node: a pull-through cache in front of the configured upstream.
The config file is YAML or JSON; see README "For operators" for every key.

Options:
  -c, --config FILE   configuration file (required)
  -h, --help          show this help`;

export const runEdge: ServiceCommand = async (args, io) => {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } }, USAGE);
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${USAGE}`);
  // Taken from the start (Node's own answers: open its inspector, end the process), acted on once up.
  // (A cluster worker reopens and reloads when its primary says so; see edge/cluster.ts.)
  const reopen = holdSignal('SIGUSR1');
  const reload = holdSignal('SIGHUP');
  const released = (): void => {
    reopen.release();
    reload.release();
  };
  if (isEdgeWorker()) {
    // A worker reloads when its primary says so, or on its own SIGHUP once it is up (edge/cluster.ts).
    await runEdgeWorker(async (config) => edgeLogger(config, io));
    released();
    return 0;
  }
  const raw = await readConfigFile(values.config);
  // Forked first, a worker loads its code while this process validates the config (edge/cluster.ts).
  const workers = workersAsked(raw);
  const forked = workers > 1 ? forkEdgeCluster(workers) : undefined;
  let config: EdgeConfig;
  try {
    const [{ validateConfig }, { edgeConfigSchema }] = await configValidation();
    config = validateConfig(edgeConfigSchema, raw, values.config, io.env);
  } catch (err) {
    await forked?.abandon();
    throw err;
  }
  const logger = await edgeLogger(config, io);
  const { signals } = io;
  if (signals.count > 0) {
    logger.info('stopped before start-up');
    await forked?.abandon();
    released();
    return 0;
  }
  const edge = forked !== undefined ? await forked.start(config, logger) : await (await edgeServer()).startEdge(config, logger);
  reopen.actWith(() => {
    logger.info('SIGUSR1: reopening the access log');
    void edge.reopenLogs();
  });
  reload.actWith(() => {
    logger.info('SIGHUP: reloading certificates and ticket keys');
    void edge.reloadTls();
  });
  const signal = await signals.nth(1);
  logger.info({ signal, drainMs: config.drain }, 'draining before exit');
  void signals.nth(2).then(() => {
    logger.warn('second signal: exiting now');
    process.exit(1);
  });
  await edge.drain();
  released();
  logger.info('edge stopped');
  return 0;
};

async function edgeLogger(config: EdgeConfig, io: CommandIo): Promise<Logger> {
  const { createLogger, lifecycleLogStream } = await logging();
  const destination = lifecycleLogStream(config.accessLog) === 'stderr' ? io.stderr : io.stdout;
  return createLogger({ level: config.logLevel, base: { service: 'edge', pop: config.pop, node: config.node }, destination });
}
