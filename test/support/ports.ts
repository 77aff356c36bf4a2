/**
 * Ports for processes that must be told a port number (the demo: edge on P, origin on P + 1).
 * A port the kernel handed out (listen on 0) and that was closed again can be taken by any other
 * test's listener or outgoing connection before the process binds it. These are picked below the
 * kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), where neither lands, and
 * checked free on 127.0.0.1.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

/** The first port of the kernel's ephemeral range (Linux's default when it cannot be read). */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > LOWEST + 100 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

function free(port: number): Promise<boolean> {
  const probe = createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

/** A port P with P and P + 1 free on 127.0.0.1, below the ephemeral range. */
export async function freePortPair(): Promise<number> {
  const top = ephemeralStart() - 2;
  for (let i = 0; i < 50; i++) {
    const port = LOWEST + Math.floor(Math.random() * (top - LOWEST));
    if ((await free(port)) && (await free(port + 1))) return port;
  }
  throw new Error(`no two free ports in a row between ${LOWEST} and ${top}`);
}
