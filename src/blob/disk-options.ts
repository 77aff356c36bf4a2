/**
 * The disk store's options as given, and as used: defaults filled in, every value checked, with
 * errors that name the option.
 */
import { blobOptionError, requirePositiveInt } from './blob-store.js';
import type { DiskFs } from './disk-fs.js';

/** A process's commits to the index, to hold while another process opens it (SharedIndexState.hold says why). */
export interface IndexCommits {
  /**
   * Begin no write transaction until the returned release is called, or `maxMs` passed (a release
   * that never comes, its sender dead, does not stop the writes for good); resolves once those
   * begun before are committed.
   */
  hold(maxMs: number): Promise<() => void>;
}

export interface DiskBlobStoreOptions {
  /** Cache directory, created if missing. Owned by one process (LOCK file); others may write it as co-writers. */
  dir: string;
  /** Required, no default: most bytes the cache may hold on disk (segments, files by allocated blocks, index). An unbounded disk cache fills the disk. */
  maxBytes: number;
  /** Largest single body accepted. Default maxBytes / 8, so one object cannot flush most of the cache. */
  maxEntrySize?: number;
  /** Bodies up to this size are packed into segments and read whole; larger ones get a file and stream. Default 64 KiB (at most blockSize). */
  packMaxSize?: number;
  /** Bodies up to this size are read whole into `data` by get(). Default 64 KiB. */
  inlineReadMaxSize?: number;
  /** Bytes per checksummed block of a body file. Default 256 KiB: a reader holds one block. */
  blockSize?: number;
  /** Bytes per generation (segment). Default maxBytes / 64 within 1–64 MiB, and at most maxBytes / 16: eviction frees this much at a time. */
  segmentSize?: number;
  /** How often segments are fdatasynced and recent uses applied to recency. Default 1000 ms: about what a power loss may lose of packed bodies. */
  syncIntervalMs?: number;
  /** The path a key belongs to, for keysUnderPath (the edge passes the URL path of its cache keys). Default: the key itself. */
  pathOf?: (key: string) => string;
  /** Pause between batches of the background check, in ms. Default 20: the check yields to requests. */
  checkPauseMs?: number;
  /**
   * Open as a co-writer with this id (1–1023), beside the owner that opened the directory first
   * and still has it open (see disk-blob-store.ts); its ids must be unique among the processes.
   * Default: absent, the owner.
   */
  writer?: number;
  /**
   * Write sequence numbers a writer takes from the index's shared state at a time. Default 2^20:
   * one state change per million writes. Tests take small blocks to cross many.
   */
  seqBlock?: number;
  /** File-system operations to use instead of node:fs/promises (tests inject failures). Default: node's. */
  fsOps?: Partial<DiskFs>;
  /**
   * Runs `open` (the open of the index's LMDB environment, and this process's first commit to it:
   * the owner's recount, a co-writer's registration) while every other process that has the
   * index open holds its commits (SharedIndexState.hold says why), and resolves with what it
   * returned: this process's commits, to hold while the next process opens. Only that part of an
   * open needs it (not the lock, the folders, the segments), so holds last milliseconds.
   * Default: at once (no other process opens the index meanwhile).
   */
  exclusiveEnvOpen?: <T extends IndexCommits>(open: () => T) => Promise<T>;
}

/** The options with every default filled in (the directory, file-system and path function apart). */
export type DiskStoreSettings = Required<Omit<DiskBlobStoreOptions, 'fsOps' | 'dir' | 'pathOf' | 'writer' | 'exclusiveEnvOpen' | 'seqBlock'>>;

export function diskStoreOptions(options: DiskBlobStoreOptions): DiskStoreSettings {
  const maxBytes = requirePositiveInt('maxBytes', options.maxBytes);
  const blockSize = requirePositiveInt('blockSize', options.blockSize ?? 256 * 1024);
  const opts: DiskStoreSettings = {
    maxBytes,
    maxEntrySize: requirePositiveInt('maxEntrySize', options.maxEntrySize ?? Math.max(1, Math.floor(maxBytes / 8))),
    packMaxSize: options.packMaxSize ?? Math.min(64 * 1024, blockSize),
    inlineReadMaxSize: options.inlineReadMaxSize ?? 64 * 1024,
    blockSize,
    segmentSize: requirePositiveInt('segmentSize', options.segmentSize ?? Math.max(1, Math.min(64 * 2 ** 20, Math.max(2 ** 20, Math.floor(maxBytes / 64)), Math.floor(maxBytes / 16)))),
    syncIntervalMs: requirePositiveInt('syncIntervalMs', options.syncIntervalMs ?? 1000),
    checkPauseMs: options.checkPauseMs ?? 20,
  };
  if (opts.maxEntrySize > maxBytes) throw blobOptionError('maxEntrySize', 'must not exceed maxBytes');
  if (!Number.isSafeInteger(opts.inlineReadMaxSize) || opts.inlineReadMaxSize < 0) throw blobOptionError('inlineReadMaxSize', 'must be an integer ≥ 0');
  if (!Number.isSafeInteger(opts.packMaxSize) || opts.packMaxSize < 0 || opts.packMaxSize > blockSize) throw blobOptionError('packMaxSize', 'must be an integer from 0 to blockSize');
  if (typeof options.dir !== 'string' || options.dir === '') throw blobOptionError('dir', 'is required');
  if (options.seqBlock !== undefined) requirePositiveInt('seqBlock', options.seqBlock);
  return opts;
}
