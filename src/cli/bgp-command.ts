/**
 * `anycdn bgp render --inventory FILE --out DIR`: every node's BIRD, edge, agent and systemd files
 * from one inventory (bgp/render.ts), written under DIR/<pop>/<node>/.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import { inventorySchema } from '../../bgp/inventory.js';
import { renderInventory } from '../../bgp/render.js';
import { parseFlags, UsageError, type Command } from './args.js';

const USAGE = `Usage: anycdn bgp render --inventory FILE --out DIR
       anycdn bgp agent --config FILE

Anycast for edge nodes with BIRD 2 (see deploy/README.md).

  render   write every node's bird.conf, announce.conf (withdrawn), edge.yaml, agent.yaml and
           systemd units to DIR/<pop>/<node>/ from one inventory file (YAML or JSON)
  agent    run beside an edge: probe its health, tell BIRD to announce or withdraw

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

const SUBCOMMANDS: Record<string, Command> = { render: runRender };

export const runBgp: Command = async (args, io) => {
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  const command = SUBCOMMANDS[name];
  if (command === undefined) throw new UsageError(`unknown bgp command "${name}"\n\n${USAGE}`);
  return command(rest, io);
};
