/**
 * The purges that asset changes owe the edges. An upload or delete switches the store first, then
 * logs its purge (origin/purge/asset-purge.ts). When that append fails (the log's disk is full or
 * failing), the change is stored but no edge has been told: the purge is owed. An owed purge is
 * logged again in the background every `retryMs`, and at once when the publisher repeats the
 * request — an identical upload is otherwise a no-op and a repeated delete a 404, and would purge
 * nothing. The request that could not log its purge is answered 503 (`purge_not_logged`) with
 * Retry-After, so a publisher's retry completes it.
 *
 * Owed purges live in memory: a crash between the store's switch and the log's append (one fsync)
 * loses that purge. Bounded: past MAX_OWED paths the debt becomes one purge of everything, which
 * is correct if costly.
 */
import { CdnError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import type { Purge } from '../../src/purge/purge-request.js';
import { assetChangePurge } from './asset-purge.js';
import type { PurgeEntry, PurgeSource } from './purge-log-format.js';

/** Most paths remembered one by one; past this, everything is purged. */
export const MAX_OWED = 10_000;
const RETRY_AFTER_S = 5;

/** What ChangePurges needs of the purge log. */
export interface PurgeAppender {
  append(purge: Purge, source: PurgeSource): Promise<PurgeEntry>;
}

const ALL: Purge = { urls: [], prefixes: [], tags: [], all: true, soft: false };

export class ChangePurges {
  /** Paths whose change is stored but whose purge is not logged, with the change's source. */
  private readonly owed = new Map<string, { source: PurgeSource }>();
  /** More than MAX_OWED were owed: a purge of everything is owed instead. */
  private owedAll: PurgeSource | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retrying: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly log: PurgeAppender,
    private readonly logger: Logger,
    private readonly retryMs = 5_000,
  ) {}

  /** Paths (and a purge of everything, counted as one) whose purge is owed. */
  get size(): number {
    return this.owed.size + (this.owedAll === undefined ? 0 : 1);
  }

  /** Whether the change of `path` still owes its purge. */
  owes(path: string): boolean {
    return this.owedAll !== undefined || this.owed.has(path);
  }

  /**
   * Logs the purge of what changing `path` made stale; resolves once it is durable. When the log
   * fails, the purge is owed and the failure is a 503 that says the change itself is stored.
   */
  async purge(path: string, source: PurgeSource): Promise<PurgeEntry> {
    if (this.owedAll !== undefined) {
      const entry = await this.settleAll();
      if (entry !== undefined) return entry;
    }
    try {
      const entry = await this.log.append(assetChangePurge(path), source);
      this.owed.delete(path);
      return entry;
    } catch (err) {
      this.owe(path, source);
      this.logger.error({ err, path, owed: this.size }, 'asset change stored, but its purge could not be logged; retried in the background');
      throw new CdnError('purge_not_logged', 'internal', `${path} is stored, but the purge that tells the edges could not be logged, so edges may serve the old version: it is retried, and repeating this request retries it now`, {
        status: 503,
        headers: { 'retry-after': String(RETRY_AFTER_S) },
        cause: err,
      });
    }
  }

  /** Stops the background retries (what is still owed is lost with the process, and logged as such). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.size > 0) this.logger.error({ owed: this.size, paths: [...this.owed.keys()].slice(0, 20), all: this.owedAll !== undefined }, 'origin stops with asset purges never logged: purge these paths when it is back');
  }

  /** Resolves once a retry under way is done (for tests and a clean stop). */
  async settled(): Promise<void> {
    while (this.retrying !== undefined) await this.retrying;
  }

  private owe(path: string, source: PurgeSource): void {
    if (this.owedAll === undefined && !this.owed.has(path) && this.owed.size >= MAX_OWED) {
      this.owedAll = source;
      this.owed.clear();
    } else if (this.owedAll === undefined) this.owed.set(path, { source });
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined || this.retrying !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.retrying = this.retry().finally(() => {
        this.retrying = undefined;
        if (this.size > 0) this.schedule();
      });
    }, this.retryMs);
    this.timer.unref();
  }

  /** Logs every owed purge (appends made together are written with one fsync). */
  private async retry(): Promise<void> {
    if (this.owedAll !== undefined) {
      await this.settleAll();
      return;
    }
    await Promise.all(
      [...this.owed].map(async ([path, debt]) => {
        try {
          await this.log.append(assetChangePurge(path), debt.source);
          // Unless the path changed again and failed again meanwhile: then that purge is owed.
          if (this.owed.get(path) === debt) this.owed.delete(path);
        } catch {
          // Still owed; tried again after retryMs.
        }
      }),
    );
    if (this.owed.size === 0) this.logger.info('owed asset purges are logged now');
  }

  /** Logs the owed purge of everything; resolves with its entry, or undefined while the log still fails. */
  private async settleAll(): Promise<PurgeEntry | undefined> {
    const source = this.owedAll;
    if (source === undefined) return undefined;
    try {
      const entry = await this.log.append(ALL, source);
      this.owedAll = undefined;
      this.logger.info({ purge: entry.id }, 'owed purge of everything is logged now');
      return entry;
    } catch {
      return undefined;
    }
  }
}
