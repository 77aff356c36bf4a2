/**
 * `anycdn demo [--port N] [--data DIR] [--tls]`: an edge on 127.0.0.1:N in front of an origin on
 * N+1, the origin seeded with generated sample assets, printing the URLs to open. Tokens come from
 * ANYCDN_PUBLISH_TOKEN / ANYCDN_PURGE_TOKEN / ANYCDN_ADMIN_TOKEN (the edge-local purge's) or are
 * generated and printed; the edge token (the purge stream's, which the edge follows) from
 * ANYCDN_EDGE_TOKEN or is generated. `--tls`: the edge over HTTPS alone
 * (HTTP/2 and HTTP/1.1), with a throwaway self-signed certificate for localhost and 127.0.0.1 made
 * in the data folder (src/cli/demo-certificate.ts). SIGINT/SIGTERM stop it; one that comes while
 * it starts stops what has been started by then, and starts nothing more.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { validateConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { originConfigSchema } from '../../origin/config.js';
import { demoAssets } from '../../origin/demo-assets.js';
import { startOrigin } from '../../origin/server.js';
import { edgeConfigSchema } from '../../edge/config.js';
import { startEdge, type EdgeServer } from '../../edge/server.js';
import { parseFlags, UsageError, type ServiceCommand } from './args.js';
import { demoCertificate } from './demo-certificate.js';

const USAGE = `Usage: anycdn demo [--port N] [--data DIR] [--tls]

Starts an edge on 127.0.0.1:N and an origin on 127.0.0.1:N+1 with sample images,
and prints URLs to open.

Options:
  --port N      edge port (default 8080); the origin listens on N+1
  --data DIR    keep data in DIR (default: a temporary folder removed on exit);
                started again on DIR, files already there are kept
  --tls         the edge over HTTPS only (HTTP/2 and HTTP/1.1), with a throwaway
                self-signed certificate for localhost and 127.0.0.1 made in the
                data folder (needs the openssl command)
  -h, --help    show this help`;

export const runDemo: ServiceCommand = async (args, io) => {
  const { values } = parseFlags(args, { port: { type: 'string' }, data: { type: 'string' }, tls: { type: 'boolean' } }, USAGE);
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65534) throw new UsageError(`--port must be an integer from 1 to 65534\n\n${USAGE}`);
  const { signals } = io;
  if (signals.count > 0) return 0;
  const dataDir = values.data ?? (await mkdtemp(join(tmpdir(), 'anycdn-demo-')));
  // A folder made for this run goes with it, whether the demo stops or cannot start.
  const removeData = async (): Promise<void> => {
    if (values.data === undefined) await rm(dataDir, { recursive: true, force: true });
  };
  const publishToken = io.env['ANYCDN_PUBLISH_TOKEN'] || randomBytes(24).toString('base64url');
  const purgeToken = io.env['ANYCDN_PURGE_TOKEN'] || randomBytes(24).toString('base64url');
  const edgeToken = io.env['ANYCDN_EDGE_TOKEN'] || randomBytes(24).toString('base64url');
  const adminToken = io.env['ANYCDN_ADMIN_TOKEN'] || randomBytes(24).toString('base64url');
  const config = validateConfig(
    originConfigSchema,
    { listen: `127.0.0.1:${port + 1}`, dataDir: join(dataDir, 'origin'), publishToken, purgeToken, edgeToken, logLevel: 'warn', accessLog: false },
    'demo settings',
    io.env,
  );
  const logger = createLogger({ level: config.logLevel, base: { service: 'origin' } });
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  try {
    origin = await startOrigin(config, logger);
  } catch (err) {
    // The origin's port is taken, say.
    await removeData();
    throw err;
  }
  let edge: EdgeServer | undefined;
  try {
    // A data folder used before keeps what is in it: the samples fill in only what is missing.
    for (const asset of await demoAssets()) {
      if ((await origin.store.head(asset.path)) !== undefined) continue;
      await origin.store.put(asset.path, Readable.from([asset.data]), { maxBytes: config.maxUploadBytes, tags: asset.tags, cacheControl: asset.cacheControl });
    }
    const certificate = values.tls === true ? await demoCertificate(join(dataDir, 'tls')) : undefined;
    const listening = certificate === undefined ? { listen: `127.0.0.1:${port}` } : { listen: false, tls: { listen: `127.0.0.1:${port}`, certificates: [certificate] } };
    const edgeConfig = validateConfig(
      edgeConfigSchema,
      // The edge follows the origin's purge stream (its upstream) with the edge token.
      { ...listening, upstream: origin.url, edgeToken, adminToken, pop: 'demo', node: 'edge-1', cacheDir: join(dataDir, 'edge-cache'), logLevel: 'warn', accessLog: false, drain: 0, disk: { maxBytes: '1GiB' } },
      'demo settings',
      io.env,
    );
    // Stopped while the origin started: the edge is not started at all.
    if (signals.count === 0) edge = await startEdge(edgeConfig, createLogger({ level: edgeConfig.logLevel, base: { service: 'edge' } }));
    // Printed once the edge follows the purge stream, so a purge right away counts it (bounded: the origin is local).
    if (edge !== undefined) await Promise.race([edge.purges.subscriber?.caughtUp(), new Promise((r) => setTimeout(r, 3_000).unref())]);
  } catch (err) {
    // The edge's port is taken, say: stop the origin too, or the process would never exit.
    await origin.close(0);
    await removeData();
    throw err;
  }
  if (edge !== undefined && signals.count === 0) {
    const e = edge.url;
    const o = origin.url;
    const cert = values.tls === true ? join(dataDir, 'tls', 'cert.pem') : undefined;
    const curlTrust = cert === undefined ? '' : `--cacert ${cert} `;
    io.stdout.write(`anycdn demo is running: an edge at ${e} in front of an origin at ${o}.
${
  cert === undefined
    ? ''
    : `
  The edge speaks HTTPS only (HTTP/2 and HTTP/1.1), with a throwaway self-signed certificate for
  localhost and 127.0.0.1: ${cert}
  curl: trust it with --cacert ${cert} (or skip the check with -k).
  A browser warns once; accept the risk for this address, or import the certificate as trusted.
`
}
  Open the demo page:   ${e}/
  Original photo:       ${e}/photos/landscape.jpg
  Resized, negotiated:  ${e}/photos/landscape.jpg?w=640&fmt=auto
  WebP with alpha:      ${e}/photos/logo.png?w=200&fmt=webp
  Bad parameter (400):  ${e}/photos/landscape.jpg?w=abc
  Health, metrics:      ${e}/_cdn/healthz  ${e}/_cdn/metrics

  See the cache work:   curl ${curlTrust}-s -o /dev/null -D - '${e}/photos/landscape.jpg?w=640' | grep -i cache-status   (twice)

  Upload your own:      ANYCDN_ORIGIN=${o} ANYCDN_PUBLISH_TOKEN=${publishToken} \\
                          npx anycdn upload ./my-photo.jpg photos/my-photo.jpg
  Purge:                ANYCDN_ORIGIN=${o} ANYCDN_PURGE_TOKEN=${purgeToken} \\
                          npx anycdn purge --url /photos/landscape.jpg --wait 5
  Purge this edge only: curl ${curlTrust}-s -X POST -H 'authorization: Bearer ${adminToken}' \\
                          -d '{"urls":["/photos/landscape.jpg"]}' ${e}/_cdn/purge
  Publish token:        ${publishToken}
  Purge token:          ${purgeToken}
  Edge admin token:     ${adminToken}
  Data folder:          ${dataDir}${values.data === undefined ? ' (removed on exit)' : ''}

Press Ctrl-C to stop.
`);
  }
  await signals.nth(1);
  // A second signal ends the process at once.
  signals.stop();
  await edge?.drain(0);
  origin.drain();
  await origin.close(2_000);
  await removeData();
  return 0;
};
