/**
 * `anycdn bgp render --inventory FILE --out DIR`: every node's BIRD, edge, agent and systemd files
 * from one inventory (bgp/render.ts), written under DIR/<pop>/<node>/.
 * `anycdn bgp agent --config FILE`: the announce/withdraw agent beside an edge (bgp/agent.ts),
 * until SIGTERM (drain, then withdraw) or a second signal (withdraw at once).
 * `anycdn bgp withdraw --config FILE`: withdraw once (the agent unit's ExecStopPost).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { startAgent, withdrawOnce } from '../../bgp/agent.js';
import { agentConfigSchema } from '../../bgp/agent-config.js';
import { createAgentMetrics, serveMetrics } from '../../bgp/agent-metrics.js';
import { readAnnounceFile, writeAnnounceFile } from '../../bgp/announce-file.js';
import { BirdControl } from '../../bgp/bird-control.js';
import { probeHealth } from '../../bgp/health-probe.js';
import { inventorySchema } from '../../bgp/inventory.js';
import { renderInventory } from '../../bgp/render.js';
import { parseFlags, UsageError, type Command, type ServiceCommand } from './args.js';

const USAGE = `Usage: anycdn bgp render --inventory FILE --out DIR
       anycdn bgp agent --config FILE
       anycdn bgp withdraw --config FILE

Anycast for edge nodes with BIRD 2 (see deploy/README.md).

  render    write every node's bird.conf, announce.conf (withdrawn), edge.yaml, agent.yaml and
            systemd units to DIR/<pop>/<node>/ from one inventory file (YAML or JSON)
  agent     run beside an edge: probe its health, tell BIRD to announce or withdraw
  withdraw  withdraw once and exit (what the agent's unit runs when the agent stops)

Run "anycdn bgp <command> --help" for a command's options.`;

const RENDER_USAGE = `Usage: anycdn bgp render --inventory FILE --out DIR

Validates the inventory (errors name the file and the field) and writes, per node,
DIR/<pop>/<node>/: bird.conf, announce.conf, edge.yaml, agent.yaml, anycdn-edge.service,
anycdn-bgp-agent.service, anycdn-bird.service. BGP passwords given as { env: NAME } are read
from the environment; bird.conf holding one is written with mode 0640.

Options:
  -i, --inventory FILE   the inventory (required); deploy/inventory.example.yaml shows every key
  -o, --out DIR          output folder (required); created when missing, files in it overwritten
  -h, --help             show this help`;

const runRender: Command = async (args, io) => {
  const { values } = parseFlags(args, { inventory: { type: 'string', short: 'i' }, out: { type: 'string', short: 'o' } }, RENDER_USAGE);
  if (values.help) {
    io.stdout.write(RENDER_USAGE + '\n');
    return 0;
  }
  if (values.inventory === undefined) throw new UsageError(`--inventory is required\n\n${RENDER_USAGE}`);
  if (values.out === undefined) throw new UsageError(`--out is required\n\n${RENDER_USAGE}`);
  const inventory = await loadConfigFile(inventorySchema, values.inventory, io.env);
  const files = renderInventory(inventory);
  for (const file of files) {
    const target = join(values.out, file.path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, file.content, { mode: file.mode });
    await chmod(target, file.mode);
  }
  const nodes = inventory.pops.reduce((n, pop) => n + pop.nodes.length, 0);
  io.stdout.write(`wrote ${files.length} files for ${nodes} node${nodes === 1 ? '' : 's'} under ${values.out}\n`);
  return 0;
};

const AGENT_USAGE = `Usage: anycdn bgp agent --config FILE

Runs beside an edge: probes its health URL every interval, announces the anycast prefixes after
\`rise\` passing probes, withdraws after \`fall\` failing ones (at once when the edge is draining,
after the graceful-shutdown community for \`gracefulShutdown\`), by rewriting BIRD's announce
include and running \`configure\` on its control socket. Starts withdrawn. SIGTERM: graceful
shutdown, withdraw, exit; a second signal withdraws at once. agent.yaml is rendered by
\`anycdn bgp render\`.

Options:
  -c, --config FILE   agent configuration (required)
  -h, --help          show this help`;

const WITHDRAW_USAGE = `Usage: anycdn bgp withdraw --config FILE

Writes the withdrawn announce include and runs \`configure\` on BIRD's control socket, once.
Exits 0 when BIRD confirmed or is not running (it starts withdrawn), 1 when BIRD refused.

Options:
  -c, --config FILE   agent configuration (required)
  -h, --help          show this help`;

const runAgent: ServiceCommand = async (args, io) => {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } }, AGENT_USAGE);
  if (values.help) {
    io.stdout.write(AGENT_USAGE + '\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${AGENT_USAGE}`);
  const config = await loadConfigFile(agentConfigSchema, values.config, io.env);
  const logger = createLogger({ level: config.logLevel, base: { service: 'bgp-agent', pop: config.pop, node: config.node } });
  const metrics = createAgentMetrics({ pop: config.pop, node: config.node });
  const listener = config.metrics === undefined ? undefined : await serveMetrics(metrics.registry, config.metrics);
  if (listener !== undefined) logger.info({ address: `${listener.address.address}:${listener.address.port}` }, 'metrics at /metrics');
  const bird = new BirdControl(config.bird.socket, { timeoutMs: config.bird.commandTimeout });
  const agent = startAgent({
    config,
    logger,
    metrics,
    bird,
    probe: () => probeHealth(config.health.url, config.health.timeout),
    writeAnnounce: (state) => writeAnnounceFile(config.bird.announceFile, state),
    readAnnounce: () => readAnnounceFile(config.bird.announceFile),
    now: () => performance.now(),
  });
  // Signals are watched from before this module loaded (main.ts): one that came during start-up
  // stops the agent as soon as it runs, which starts withdrawn anyway.
  void io.signals.nth(1).then((signal) => {
    logger.info({ signal }, 'stopping: graceful shutdown, then withdraw');
    agent.stop(false);
    void io.signals.nth(2).then(() => {
      logger.warn('second signal: withdrawing at once');
      agent.stop(true);
    });
  });
  const confirmed = await agent.done;
  bird.close();
  listener?.server.close();
  return confirmed ? 0 : 1;
};

const runWithdraw: Command = async (args, io) => {
  const { values } = parseFlags(args, { config: { type: 'string', short: 'c' } }, WITHDRAW_USAGE);
  if (values.help) {
    io.stdout.write(WITHDRAW_USAGE + '\n');
    return 0;
  }
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${WITHDRAW_USAGE}`);
  const config = await loadConfigFile(agentConfigSchema, values.config, io.env);
  const logger = createLogger({ level: config.logLevel, base: { service: 'bgp-withdraw', pop: config.pop, node: config.node } });
  const bird = new BirdControl(config.bird.socket, { timeoutMs: config.bird.commandTimeout });
  const ok = await withdrawOnce({ bird, logger, writeAnnounce: (state) => writeAnnounceFile(config.bird.announceFile, state) });
  return ok ? 0 : 1;
};

const SUBCOMMANDS: Record<string, ServiceCommand> = { render: runRender, agent: runAgent, withdraw: runWithdraw };

export const runBgp: ServiceCommand = async (args, io) => {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown bgp command "${name}"\n\n${USAGE}`);
  return command(rest, io);
};
