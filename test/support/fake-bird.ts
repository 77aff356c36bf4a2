/**
 * A fake BIRD control socket: a unix-socket server in a temporary directory that speaks BIRD's
 * line protocol (a four-digit code, `-` for a continued reply, a space for the last line) as a
 * test scripts it, and records every command line it was sent. For the agent's decisions and the
 * control client's failures, which a real daemon rarely shows; `support/bird.ts` runs a real one.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What BIRD 2 sends first on every control connection. */
export const BIRD_GREETING = '0001 BIRD 2.0.12 ready.\n';
/** BIRD's reply to a `configure` it accepted. */
export const CONFIGURED_REPLY = '0002-Reading configuration from /etc/anycdn/bird.conf\n0003 Reconfigured\n';

/** BIRD's reply to `show status`, printing these boot and reconfiguration times (`YYYY-MM-DD hh:mm:ss.mmm`). */
export function statusReply(times: { reboot: string; reconfiguration: string }): string {
  return `1000-BIRD 2.0.12\n1011-Router ID is 192.0.2.1\n Last reboot on ${times.reboot}\n Last reconfiguration on ${times.reconfiguration}\n0013 Daemon is up and running\n`;
}

export interface FakeBird {
  /** The control socket's path. */
  path: string;
  /** Every command line received, over all connections, in order (when the script uses `scripted`). */
  commands: string[];
  /** Connections accepted so far. */
  connections(): number;
  /** Ends the open connections, stops listening and removes the directory. */
  close(): Promise<void>;
}

/** Listens on a new socket; `onConnection` scripts what is said on each connection. */
export async function startFakeBird(onConnection: (socket: Socket, commands: string[]) => void): Promise<FakeBird> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-fake-bird-'));
  const path = join(dir, 'bird.ctl');
  const commands: string[] = [];
  const open = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    onConnection(socket, commands);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    commands,
    connections: () => connections,
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Greets, then answers each command line with `answer(command)` (undefined: stays silent). */
export function scripted(answer: (command: string) => string | undefined, greeting = BIRD_GREETING) {
  return (socket: Socket, commands: string[]): void => {
    socket.write(greeting);
    let buffered = '';
    socket.on('data', (text: string) => {
      buffered += text;
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        const command = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        commands.push(command);
        const reply = answer(command);
        if (reply !== undefined) socket.write(reply);
      }
    });
  };
}
