/**
 * The control-socket client against a fake BIRD (a unix-socket server speaking the line protocol,
 * for the failures a real one rarely shows) and against a real BIRD on a temporary socket.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import { announceInclude } from '../../../bgp/announce.js';
import { BirdControl } from '../../../bgp/bird-control.js';
import { configureAccepted, parseStatus, replyText, sameBirdTime } from '../../../bgp/bird-reply.js';
import { assertBirdInCi, noBirdDaemon, startBird, type BirdDaemon } from '../../support/bird.js';
import { BIRD_GREETING, scripted, startFakeBird, type FakeBird } from '../../support/fake-bird.js';

assertBirdInCi(noBirdDaemon);

const dirs: string[] = [];
const fakes: FakeBird[] = [];
const clients: BirdControl[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const f of fakes.splice(0)) await f.close();
});
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-birdctl-'));
  dirs.push(dir);
  return dir;
}

/** A fake BIRD, closed after the test: `onConnection` scripts what it says. */
async function fakeBird(onConnection: Parameters<typeof startFakeBird>[0]): Promise<FakeBird> {
  const fake = await startFakeBird(onConnection);
  fakes.push(fake);
  return fake;
}

function client(path: string, timeoutMs = 500): BirdControl {
  const c = new BirdControl(path, { timeoutMs });
  clients.push(c);
  return c;
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(CdnError);
    return { code: (err as CdnError).code, message: (err as CdnError).message };
  }
  throw new Error('expected a failure');
}

describe('BirdControl against a fake BIRD', () => {
  it('reads the greeting, sends one line per command, returns whole replies, in order', async () => {
    const fake = await fakeBird(scripted((c) => (c === 'configure' ? '0002-Reading configuration from x\n0003 Reconfigured\n' : '0013 Daemon is up and running\n')));
    const c = client(fake.path);
    const [a, b] = await Promise.all([c.command('configure'), c.command('show status')]);
    expect(a).toEqual({ code: 3, lines: [{ code: 2, text: 'Reading configuration from x' }, { code: 3, text: 'Reconfigured' }] });
    expect(b.code).toBe(13);
    expect(fake.commands).toEqual(['configure', 'show status']);
    expect(c.greeting).toBe('BIRD 2.0.12 ready.');
    expect(c.connections).toBe(1);
    expect(fake.connections()).toBe(1);
  });

  it('returns an error reply rather than throwing', async () => {
    const fake = await fakeBird(scripted(() => '9001 syntax error, unexpected CF_SYM_UNDEFINED\n'));
    const reply = await client(fake.path).command('disable nosuch');
    expect(reply.code).toBe(9001);
    expect(replyText(reply)).toBe('syntax error, unexpected CF_SYM_UNDEFINED');
  });

  it('no socket: bird_unreachable naming the path', async () => {
    const path = join(await tempDir(), 'none.ctl');
    expect(await failure(client(path).command('show status'))).toEqual({ code: 'bird_unreachable', message: `BIRD control socket ${path}: ENOENT` });
  });

  it('no greeting: bird_timeout', async () => {
    const fake = await fakeBird(() => undefined);
    expect(await failure(client(fake.path, 200).command('show status'))).toEqual({ code: 'bird_timeout', message: `BIRD control socket ${fake.path}: no answer to the greeting within 200 ms` });
  });

  it('a command never answered: bird_timeout, and the next command reconnects', async () => {
    let first = true;
    const fake = await fakeBird(
      scripted((c) => {
        if (c === 'configure' && first) {
          first = false;
          return undefined;
        }
        return '0003 Reconfigured\n';
      }),
    );
    const c = client(fake.path, 200);
    expect(await failure(c.command('configure'))).toEqual({ code: 'bird_timeout', message: `BIRD control socket ${fake.path}: no answer to "configure" within 200 ms` });
    expect((await c.command('configure')).code).toBe(3);
    expect(fake.connections()).toBe(2);
    expect(c.connections).toBe(2);
  });

  it('a reply cut short by a closed connection: bird_unreachable', async () => {
    const cut = await fakeBird((socket) => {
      socket.write(BIRD_GREETING);
      socket.once('data', () => socket.end('0002-Reading configuration from x\n'));
    });
    expect(await failure(client(cut.path).command('configure'))).toEqual({ code: 'bird_unreachable', message: `BIRD control socket ${cut.path}: connection closed` });
  });

  it('something that is not BIRD: bird_protocol', async () => {
    const fake = await fakeBird((socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n'));
    expect(await failure(client(fake.path).command('show status'))).toEqual({ code: 'bird_protocol', message: `BIRD control socket ${fake.path}: not a BIRD reply line: "SSH-2.0-OpenSSH_9.2"` });
  });

  it('a greeting that is not 0001: bird_protocol', async () => {
    const fake = await fakeBird(scripted(() => '0000 \n', '8007 Access denied\n'));
    expect(await failure(client(fake.path).command('show status'))).toEqual({ code: 'bird_protocol', message: `BIRD control socket ${fake.path}: unexpected greeting 8007` });
  });

  it('a reply nobody asked for: bird_protocol', async () => {
    const fake = await fakeBird(scripted(() => '0003 Reconfigured\n0003 Reconfigured\n'));
    const c = client(fake.path);
    // The first reply answers the command; the second arrives with nothing pending.
    expect((await c.command('configure')).code).toBe(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.greeting).toBeUndefined(); // the connection was dropped
    expect((await c.command('configure')).code).toBe(3);
    expect(c.connections).toBe(2);
  });

  it('refuses a command of two lines before sending anything', async () => {
    const fake = await fakeBird(scripted(() => '0000 \n'));
    await expect(client(fake.path).command('configure\ndown')).rejects.toThrow('a BIRD command is one line');
    expect(fake.commands).toEqual([]);
  });
});

describe.skipIf(noBirdDaemon !== undefined)(`BirdControl against a real BIRD${noBirdDaemon ? ` (skipped: ${noBirdDaemon})` : ''}`, () => {
  let bird: BirdDaemon | undefined;
  afterEach(async () => {
    await bird?.stop();
    bird = undefined;
  });

  async function start(): Promise<{ dir: string; include: string; bird: BirdDaemon }> {
    const dir = await tempDir();
    const include = join(dir, 'announce.conf');
    await writeFile(include, announceInclude('withdrawn'));
    const conf = join(dir, 'bird.conf');
    await writeFile(
      conf,
      `log stderr all;\nrouter id 192.0.2.1;\ninclude "${include}";\nprotocol device {}\nprotocol static anycdn_anycast4 { ipv4; route 203.0.113.0/24 blackhole; }\n`,
    );
    bird = await startBird(conf, dir);
    return { dir, include, bird };
  }

  it('show status, configure, and a configuration error BIRD refuses', async () => {
    const { include, bird: daemon } = await start();
    const c = client(daemon.socket, 5000);
    const status = parseStatus(await c.command('show status'));
    expect(status.version).toMatch(/^BIRD 2\./);
    expect(status.routerId).toBe('192.0.2.1');
    expect(status.state).toBe('Daemon is up and running');
    expect(status.lastReboot).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    expect(c.greeting).toMatch(/^BIRD 2\.\d+\.\d+ ready\.$/);

    await writeFile(include, announceInclude('announced'));
    const ok = await c.command('configure');
    expect(configureAccepted(ok)).toBe(true);
    const after = parseStatus(await c.command('show status'));
    // The same boot: BIRD prints its boot time anew each time, and it can move by a millisecond.
    expect([after.lastReboot, sameBirdTime(after.lastReboot, status.lastReboot)]).toEqual([expect.any(String), true]);

    await writeFile(include, 'define ANYCDN_ANNOUNCE = ;\n');
    const refused = await c.command('configure');
    expect(configureAccepted(refused)).toBe(false);
    expect(refused.code).toBe(8002);
    expect(replyText(refused)).toContain(`${include}:1:`);

    const bad = await c.command('disable nosuch');
    expect(bad.code).toBe(9001);
  });

  it('notices BIRD going away and reconnects to the next one', async () => {
    const { dir, bird: first } = await start();
    const c = client(first.socket, 2000);
    const before = parseStatus(await c.command('show status'));
    await first.stop();
    expect((await failure(c.command('show status'))).code).toBe('bird_unreachable');
    await new Promise((r) => setTimeout(r, 20)); // a new boot time to the millisecond
    bird = await startBird(join(dir, 'bird.conf'), dir);
    const again = parseStatus(await c.command('show status'));
    expect(again.lastReboot).not.toBe(before.lastReboot);
    expect(c.connections).toBe(2);
  });
});
