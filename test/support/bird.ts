/**
 * BIRD 2 for tests: where the binary is, `bird -p` on a file, and a daemon on a temporary control
 * socket (no BGP neighbour needs to exist for it to run; it needs root and a router id). Tests
 * that need BIRD skip with the reason when it is absent, except under CI=true, where a missing
 * BIRD is a failure (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';

function findBird(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.map((dir) => join(dir, 'bird')).find((file) => file.startsWith('/') && existsSync(file));
}

export const birdPath = findBird();
const isRoot = process.getuid?.() === 0;
const inCi = process.env['CI'] === 'true';

/** Why tests that parse with `bird -p` cannot run here, or undefined when they can. */
export const noBirdParse = birdPath === undefined ? 'bird (BIRD 2) is not installed (apt-get install bird2)' : undefined;
/** Why tests that run a BIRD daemon cannot run here, or undefined when they can. */
export const noBirdDaemon = noBirdParse ?? (isRoot ? undefined : 'running BIRD needs root');

/** Under CI=true a missing BIRD fails the suite instead of skipping it. */
export function assertBirdInCi(reason: string | undefined): void {
  if (inCi && reason !== undefined) throw new Error(`CI=true but ${reason}`);
}

/** `bird -p -c FILE`: exit status and what it printed. */
export function birdParse(file: string): { status: number | null; output: string } {
  const r = spawnSync(birdPath!, ['-p', '-c', file], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface BirdDaemon {
  child: ChildProcess;
  pid: number;
  socket: string;
  output(): string;
  /** SIGTERM, then wait for the exit (bounded). */
  stop(): Promise<void>;
}

/**
 * `bird -f -c CONF -s DIR/bird.ctl -P DIR/bird.pid`, resolved once the control socket takes a
 * connection: the socket file exists from BIRD's bind, and a connect before its listen is refused.
 */
export async function startBird(conf: string, dir: string, name = 'bird'): Promise<BirdDaemon> {
  const socket = join(dir, `${name}.ctl`);
  const child = spawn(birdPath!, ['-f', '-c', conf, '-s', socket, '-P', join(dir, `${name}.pid`)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const daemon: BirdDaemon = {
    child,
    pid: child.pid!,
    socket,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exitOf(child, 5000).catch(async () => {
        child.kill('SIGKILL');
        await exitOf(child, 5000);
      });
    },
  };
  // 10 s: a process start, with the lab's daemons and tests on a loaded 2-core machine.
  for (const deadline = performance.now() + 10_000; performance.now() < deadline; ) {
    if (child.exitCode !== null) throw new Error(`bird exited ${child.exitCode}: ${out}`);
    if ((await stat(socket).then((s) => s.isSocket(), () => false)) && (await accepts(socket))) return daemon;
    await new Promise((r) => setTimeout(r, 50));
  }
  await daemon.stop();
  throw new Error(`bird made no control socket in 10 s: ${out}`);
}

/** Whether a connection to the Unix socket at `path` is accepted (then closed at once). */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exitOf(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('bird did not exit')), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
