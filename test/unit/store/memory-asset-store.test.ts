/** The AssetStore contract against the in-memory store, plus its injected clock. */
import { describe, expect, it } from 'vitest';
import { MemoryAssetStore } from '../../../origin/store/memory-asset-store.js';
import { assetStoreContract, bodyOf, PNG_HEAD } from '../../contract/asset-store-contract.js';

assetStoreContract('memory', async () => ({ store: new MemoryAssetStore(), cleanup: async () => {} }));

describe('MemoryAssetStore', () => {
  it('uses the injected clock for uploads and variants, in whole seconds', async () => {
    const store = new MemoryAssetStore({ now: () => 1_700_000_000_999 });
    const meta = await store.put('a.png', bodyOf(PNG_HEAD), { maxBytes: 1024 });
    expect(meta.lastModified).toBe(1_700_000_000_000);
    const variant = await store.putVariant(meta.sha256, 'fmt=png', Buffer.from('x'), { contentType: 'image/png', width: 1, height: 1 });
    expect(variant.createdAt).toBe(1_700_000_000_000);
  });

  it('hands out copies, so callers cannot change what is stored', async () => {
    const store = new MemoryAssetStore();
    await store.put('a.png', bodyOf(PNG_HEAD), { maxBytes: 1024 });
    const first = await store.readBuffer('a.png');
    first!.data.fill(0);
    expect((await store.readBuffer('a.png'))!.data.equals(PNG_HEAD)).toBe(true);
  });
});
