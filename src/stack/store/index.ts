import { deriveKey } from '../../core/identity.js';
import type { DbSpec, Store } from '../types.js';

/**
 * Open the store a node's spec names. Drivers load only in the process that uses them, so a web
 * node talking to the db node never loads better-sqlite3 or pg. `secret`: the stack secret, from
 * which the db node's key derives (remote only).
 */
export async function openStore(db: DbSpec, secret: string): Promise<Store> {
  switch (db.kind) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite.js');
      return new SqliteStore(db.path);
    }
    case 'postgres': {
      const { PostgresStore } = await import('./postgres.js');
      return new PostgresStore(db.url);
    }
    case 'remote': {
      const { RemoteStore } = await import('./remote.js');
      return new RemoteStore(db.url, { key: deriveKey(secret, 'db-rpc') });
    }
  }
}
