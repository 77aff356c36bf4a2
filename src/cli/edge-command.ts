/**
 * `anycdn edge --config FILE`: run an edge until SIGTERM/SIGINT. The first signal drains (health
 * 503 for the configured period while still serving, then a graceful close); a second one exits
 * at once.
 */
import { loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { edgeConfigSchema } from '../../edge/config.js';
import { startEdge } from '../../edge/server.js';
import { isEdgeWorker, runEdgeWorker, startEdgeCluster } from '../../edge/cluster.js';
import { parseFlags, UsageError, untilSignal, type Command } from './args.js';

const USAGE = `Usage: anycdn edge --config FILE

Runs an edge node: a pull-through cache in front of the configured upstream.
The config file is YAML or JSON; see README "For operators" for every key.

Options:
  -c, --config FILE   configuration file (required)
  -h, --help          show this help`;

export const runEdge: Command = async (args, io) => {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } }, USAGE);
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${USAGE}`);
  const config = await loadConfigFile(edgeConfigSchema, values.config, io.env);
  const logger = createLogger({ level: config.logLevel, base: { service: 'edge', pop: config.pop, node: config.node } });
  if (isEdgeWorker()) {
    await runEdgeWorker(config, logger);
    return 0;
  }
  const edge = config.workers > 1 ? await startEdgeCluster(config, logger) : await startEdge(config, logger);
  const signal = await untilSignal();
  logger.info({ signal, drainMs: config.drain }, 'draining before exit');
  void untilSignal().then(() => {
    logger.warn('second signal: exiting now');
    process.exit(1);
  });
  await edge.drain();
  logger.info('edge stopped');
  return 0;
};
