/**
 * Small hand-rolled upstreams for failure tests: one that accepts connections and never answers,
 * and one that streams a body slowly. Both listen on loopback port 0 and are closed by the test.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TestUpstream {
  url: string;
  /** Requests received so far. */
  requests(): number;
  close(): Promise<void>;
}

/** Accepts TCP connections and reads requests but never sends a byte back. */
export async function hangingUpstream(): Promise<TestUpstream> {
  const sockets = new Set<Socket>();
  let count = 0;
  const server: TcpServer = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => void count++);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * Serves `body` for every GET with `Cache-Control: public, max-age=3600` and a strong ETag,
 * writing `chunkSize` bytes every `intervalMs` milliseconds.
 */
export async function slowUpstream(body: Buffer, chunkSize: number, intervalMs: number): Promise<TestUpstream> {
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length, 'cache-control': 'public, max-age=3600', etag: '"slow-1"' });
    if (req.method === 'HEAD') return res.end();
    let pos = 0;
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(body.subarray(pos, pos + chunkSize));
      pos += chunkSize;
      if (pos >= body.length) {
        clearInterval(timer);
        res.end();
      }
    }, intervalMs);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
