/**
 * Starting an origin: open the filesystem store, build the variant service and the app from the
 * configuration, and bind it. Used by `anycdn origin`, the demo and integration tests.
 */
import type { IncomingMessage } from 'node:http';
import sharp from 'sharp';
import { openAccessLog } from '../src/access-log/access-log.js';
import type { Logger } from '../src/log.js';
import { createHttpMetrics } from '../src/metrics.js';
import { listen, type RunningServer } from '../src/serve/listen.js';
import { listenSecure, type SecureRunningServer } from '../src/serve/listen-secure.js';
import { CertificateStore } from '../src/serve/tls.js';
import { createOriginListener } from './app.js';
import { checkUploadHeaders, isUpload } from './routes/assets.js';
import { splitTarget } from './request-path.js';
import type { OriginConfig } from './config.js';
import { registerPurgeMetrics } from './purge/purge-metrics.js';
import { closePurges, openPurges, type Purges } from './purge/purges.js';
import { FsAssetStore } from './store/fs-asset-store.js';
import { TransformLimiter } from './variants/limiter.js';
import { createVariantService } from './variants/variant-service.js';

export interface OriginServer extends RunningServer {
  store: FsAssetStore;
  purges: Purges;
  /** Mark as draining: health answers 503 from now on. */
  drain(): void;
  /** Reopens the access log file (after a rotation: SIGUSR1). */
  reopenLogs(): Promise<void>;
  /** The HTTPS listener (`tls`): its base URL and port. */
  https?: { url: string; port: number };
  /** Reads the certificates, ticket keys and client CAs again (SIGHUP); what does not load keeps its previous version. */
  reloadTls(): Promise<void>;
}

/**
 * libvips keeps a cache of decoded images and operations; under a variety of sources it only
 * grows resident memory. Variants are stored once and never regenerated, so that cache rarely
 * hits: keep it small. (Glibc arena fragmentation is handled by MALLOC_ARENA_MAX, set by the CLI.)
 */
export function configureSharp(): void {
  sharp.cache({ memory: 64, files: 0, items: 100 });
  sharp.concurrency(1);
}

export async function startOrigin(config: OriginConfig, logger: Logger, options: { processMetrics?: boolean; now?: () => number } = {}): Promise<OriginServer> {
  configureSharp();
  const now = options.now ?? Date.now;
  const store = await FsAssetStore.open({ root: config.dataDir });
  let purges: Purges;
  try {
    purges = await openPurges(config, logger, now);
  } catch (err) {
    await store.close();
    throw err;
  }
  const limits = {
    maxInputPixels: config.images.maxInputPixels,
    maxInputBytes: config.images.maxInputBytes,
    maxOutputDimension: config.images.maxOutputDimension,
    timeoutMs: config.images.transformTimeout,
  };
  const limiter = new TransformLimiter({
    concurrency: config.images.concurrency,
    queueLimit: config.images.queueLimit,
    retryAfterSec: 2,
  });
  const variants = createVariantService({
    store,
    limits,
    limiter,
    quality: config.images.quality,
    avifEffort: config.images.avifEffort,
    avif: config.images.avif,
    sourceCacheBytes: config.images.sourceCacheSize,
  });
  const metrics = createHttpMetrics({ prefix: 'anycdn_origin_', processMetrics: options.processMetrics ?? true });
  registerPurgeMetrics(metrics.registry, 'anycdn_origin_', purges, now);
  let draining = false;
  let accessLog;
  try {
    accessLog = await openAccessLog(config.accessLog, { logger, metrics: { registry: metrics.registry, prefix: 'anycdn_origin_' } });
  } catch (err) {
    await closePurges(purges);
    await store.close();
    throw err;
  }
  const handler = createOriginListener({ config, store, variants, purges, metrics, logger, accessLog, now, isDraining: () => draining });
  // An upload that asks first is refused before its body when its headers already say so.
  const expectContinue = (req: IncomingMessage): boolean => {
    if (!isUpload(req.method, req.url)) return true;
    try {
      const header = (name: string): string | undefined => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      checkUploadHeaders(config, header, splitTarget(req.url ?? '')?.path ?? '');
      return true;
    } catch {
      return false;
    }
  };
  let running;
  let certificates: CertificateStore | undefined;
  let https: SecureRunningServer | undefined;
  try {
    if (config.tls !== undefined) {
      certificates = await CertificateStore.open({ config: config.tls, logger, metrics: { registry: metrics.registry, prefix: 'anycdn_origin_' } });
      https = await listenSecure({
        address: config.tls.listen,
        handler,
        expectContinue,
        certificates,
        socketIdleTimeoutMs: config.timeouts.clientIdle,
        requireClientCertificate: config.tls.clientCa !== undefined,
        onFlood: (kind, client) => logger.warn({ kind, client }, 'HTTP/2 flood: session ended with GOAWAY'),
        // With client certificates required, a refused one is what an operator looks for when an
        // edge gets 502s (the client may only see the connection close): logged, once a minute at most.
        onHandshakeError: config.tls.clientCa === undefined ? undefined : handshakeRefusals(logger),
      });
      certificates.watch();
    }
    running = await listen({ address: config.listen, handler, expectContinue, socketIdleTimeoutMs: config.timeouts.clientIdle });
  } catch (err) {
    certificates?.close();
    await https?.close(0);
    await accessLog?.close();
    await closePurges(purges);
    await store.close();
    throw err;
  }
  logger.info({ url: running.url, https: https?.url, dataDir: config.dataDir }, 'origin listening');
  const closeServer = running.close;
  // Purge streams never end by themselves, and purges waiting for edges would wait out their
  // deadline: both are ended first (edges reconnect). The data folder's lock is released once
  // the last response has gone and the purge log is closed.
  const close = async (graceMs?: number): Promise<void> => {
    purges.streams.close();
    purges.edges.releaseWaits();
    certificates?.close();
    await Promise.all([closeServer(graceMs), https?.close(graceMs)]);
    // Every answer is out (its line follows its last byte by a turn): write every line before going.
    await new Promise((r) => setImmediate(r));
    await accessLog?.close();
    await closePurges(purges);
    await store.close();
  };
  return {
    ...running,
    close,
    store,
    purges,
    https: https === undefined ? undefined : { url: https.url, port: https.port },
    reloadTls: async () => {
      await certificates?.reload('SIGHUP');
    },
    drain: () => void (draining = true),
    reopenLogs: async () => {      if (accessLog !== undefined && (await accessLog.reopen())) logger.info({ path: config.accessLog.path }, 'access log reopened');
    },
  };
}

/** A log line for refused TLS clients, at most one a minute (scanners fail handshakes all day). */
function handshakeRefusals(logger: Logger): (err: NodeJS.ErrnoException, client: string | undefined) => void {
  let last = -Infinity;
  return (err, client) => {
    const now = performance.now();
    if (now - last < 60_000) return;
    last = now;
    logger.warn({ client, code: err.code }, `TLS handshake refused (a client certificate is required, signed by tls.clientCa): ${err.message}`);
  };
}
