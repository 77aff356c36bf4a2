/**
 * A TCP relay on a loopback port in front of another, that a test can make misbehave the way a
 * network does: stop forwarding on the connections it has while keeping them open (a half-open
 * path: no FIN, no RST, just silence), or accept new connections and never forward them.
 */
import net, { type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  url: string;
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Times (performance.now()) at which each connection was accepted. */
  readonly acceptedAt: readonly number[];
  /** The open connections stop forwarding in both directions, and stay open. */
  freeze(): void;
  /** New connections are accepted but never forwarded (true), or forwarded again (false). */
  holdNew(hold: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<{ client: Socket; upstream: Socket | undefined }>();
  const acceptedAt: number[] = [];
  let hold = false;
  const server = net.createServer((client) => {
    acceptedAt.push(performance.now());
    const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
    open.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      open.delete(pair);
    });
    if (hold) return;
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get accepted() {
      return acceptedAt.length;
    },
    acceptedAt,
    freeze() {
      for (const { client, upstream } of open) {
        if (upstream === undefined) continue;
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    holdNew(value) {
      hold = value;
    },
    async close() {
      for (const { client, upstream } of open) {
        client.destroy();
        upstream?.destroy();
      }
      await new Promise((r) => server.close(r));
    },
  };
}
