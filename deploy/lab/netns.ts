/**
 * The lab's plumbing with iproute2: network namespaces, veth pairs created straight into them
 * (no name ever appears in the host's own namespace), addresses, routes and sysctls, all inside
 * the lab's namespaces. Every command is bounded; a failure names the command and what it said.
 */
import { execFile } from 'node:child_process';
import { ANYCAST_ADDRESS, ORIGIN_ADDRESS, type LabPlan } from './topology.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/**
 * Run a command to completion (at most `timeoutMs`); reject naming it and its output when it
 * fails. `env`: variables added to this process's environment.
 */
export function runCommand(command: string, args: string[], timeoutMs = 10_000, env?: Record<string, string>): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const options = { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024, encoding: 'utf8' as const, ...(env === undefined ? {} : { env: { ...process.env, ...env } }) };
    execFile(command, args, options, (err, stdout, stderr) => {
      if (err !== null) {
        const detail = `${stderr}${stdout}`.trim();
        reject(new Error(`${command} ${args.join(' ')}: ${err.killed ? `no exit within ${timeoutMs} ms` : err.message.split('\n')[0]}${detail === '' ? '' : `\n${detail}`}`));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

const ip = (...args: string[]): Promise<CommandResult> => runCommand('ip', args);

/** Names of the network namespaces on this machine (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await ip('netns', 'list');
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Why the lab cannot run here (not root, no `ip`, namespaces refused), or undefined when it can. */
export async function labUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, BIRD)';
  const probe = `anycdn-lab-probe${process.pid}`;
  try {
    await ip('netns', 'add', probe);
  } catch (err) {
    return `cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    await ip('netns', 'del', probe).catch(() => undefined);
  }
  return undefined;
}

/**
 * Create every namespace, link, address and route of the plan. Independent commands run side by
 * side: one after another, the hundred-odd `ip` processes took a minute and more on a loaded
 * machine, most of it waiting to be scheduled.
 */
export async function createNetwork(plan: LabPlan): Promise<void> {
  await Promise.all(
    plan.namespaces.map(async (ns) => {
      await ip('netns', 'add', ns);
      // A new namespace's loopback is down: nothing, not even 127.0.0.1, answers until it is up.
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }),
  );
  await Promise.all(
    plan.links.map(async (link) => {
      await ip('link', 'add', link.a.ifname, 'netns', link.a.ns, 'type', 'veth', 'peer', 'name', link.b.ifname, 'netns', link.b.ns);
      await Promise.all(
        [link.a, link.b].map(async (end) => {
          await ip('-n', end.ns, 'addr', 'add', end.address, 'dev', end.ifname);
          await ip('-n', end.ns, 'link', 'set', end.ifname, 'up');
        }),
      );
    }),
  );
  // The anycast address on lo in every PoP (this kernel may have no dummy interfaces); the
  // origin's service address on its own lo, reached over each PoP's link.
  await Promise.all([
    ...plan.pops.map((pop) => ip('-n', pop.ns, 'addr', 'add', `${ANYCAST_ADDRESS}/32`, 'dev', 'lo')),
    ip('-n', plan.origin.ns, 'addr', 'add', `${ORIGIN_ADDRESS}/32`, 'dev', 'lo'),
    ...plan.forwarding.map((ns) => runCommand('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])),
  ]);
  await Promise.all(plan.routes.map((route) => ip('-n', route.ns, 'route', 'add', route.to, 'via', route.via)));
}
