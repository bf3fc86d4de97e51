import type { DbSpec, Store } from '../types.js';

/** Open the store a node's spec names. Heavy drivers load only when used. */
export async function openStore(db: DbSpec): Promise<Store> {
  switch (db.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite.js');
      return new SqliteStore(db.path);
    }
    case 'remote': {
      const { RemoteStore } = await import('./remote.js');
      return new RemoteStore(db.url);
    }
    case 'postgres':
      throw new Error('the postgres store is not built yet');
  }
}
