import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskBlobStore } from '../../../src/blob/disk-blob-store.js';
import { MemoryBlobStore } from '../../../src/blob/memory-blob-store.js';
import { TieredBlobStore } from '../../../src/blob/tiered-blob-store.js';
import { blobStoreContract } from '../../contract/blob-store-contract.js';

blobStoreContract('disk', async (limits) => {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-disk-'));
  let store = await DiskBlobStore.open({ dir, ...limits });
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await DiskBlobStore.open({ dir, ...limits });
      return store;
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

blobStoreContract('tiered', async (limits) => {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-tiered-'));
  const openTiered = async () =>
    new TieredBlobStore({
      memory: new MemoryBlobStore({ maxBytes: limits.maxBytes, maxEntrySize: Math.min(limits.maxBytes, 2 * 1024 * 1024), keyLists: false }),
      disk: await DiskBlobStore.open({ dir, ...limits }),
    });
  let store = await openTiered();
  return {
    store,
    reopen: async () => {
      await store.close();
      store = await openTiered();
      return store;
    },
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
