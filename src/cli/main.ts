/**
 * The `anycdn` command, loaded by the executable (anycdn.cts, which sizes libuv's thread pool
 * first). This is the process rim: the only place besides that file that reads `process.argv`
 * and `process.env`, installs signal handlers and exits. Each subcommand parses its own flags and
 * prints its own `--help`.
 *
 * A long-running command (a `service`) gets termination signals listened for before its module is
 * even loaded (loading the servers' code takes a second or more on a busy machine): a signal that
 * comes while it starts is kept, and the command stops what it started when it gets to it,
 * instead of the process dying with nothing drained or closed.
 */
import { CdnError } from '../errors.js';
import { UsageError, watchTerminationSignals, type Command, type ServiceCommand } from './args.js';

type CommandEntry = { kind: 'service'; load: () => Promise<ServiceCommand> } | { kind: 'task'; load: () => Promise<Command> };

const COMMANDS: Record<string, CommandEntry> = {
  demo: { kind: 'service', load: async () => (await import('./demo-command.js')).runDemo },
  edge: { kind: 'service', load: async () => (await import('./edge-command.js')).runEdge },
  origin: { kind: 'service', load: async () => (await import('./origin-command.js')).runOrigin },
  upload: { kind: 'task', load: async () => (await import('./upload-command.js')).runUpload },
  purge: { kind: 'task', load: async () => (await import('./purge-command.js')).runPurge },
  // `bgp agent` is a service (SIGTERM: graceful shutdown, then withdraw); render and withdraw end by themselves.
  bgp: { kind: 'service', load: async () => (await import('./bgp-command.js')).runBgp },
};

const HELP = `anycdn: a self-hostable image and static-asset CDN

Usage: anycdn <command> [options]

Commands:
  demo     origin (and edge) on loopback with sample images; prints URLs to open
  origin   run the origin server:            anycdn origin --config FILE
  edge     run an edge (pull-through cache): anycdn edge --config FILE
  upload   upload a file or sync a folder:   anycdn upload FILE PATH | anycdn upload DIR PREFIX [--delete]
  purge    purge cached copies everywhere:   anycdn purge --url U | --prefix P | --tag T | --all
  bgp      anycast with BIRD 2:              anycdn bgp render --inventory FILE --out DIR | anycdn bgp agent

Run "anycdn <command> --help" for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    process.stderr.write(`anycdn: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  const io = { env: process.env, stdout: process.stdout, stderr: process.stderr };
  if (command.kind === 'task') return (await command.load())(rest, io);
  const signals = watchTerminationSignals();
  try {
    return await (await command.load())(rest, { ...io, signals });
  } finally {
    signals.stop();
  }
}

/** A failed system call (`listen EADDRINUSE: address already in use 127.0.0.1:8080`). */
function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === 'string' && /^E[A-Z]+$/.test(String((err as NodeJS.ErrnoException).code));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`anycdn: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof CdnError || isSystemError(err)) {
      // Our own errors and the system's (a port in use, a folder that is a file) say what is
      // wrong in their message; a stack trace would only bury it.
      process.stderr.write(`anycdn: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`anycdn: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
