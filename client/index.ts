/**
 * The oceanstore client SDK (`import { connect } from 'oceanstore/client'`).
 *
 * @example
 * const store = await connect({ config: 'cluster-configs/local.json' });
 * const doc = await store.create('doc');
 * const v1 = await doc.write(new TextEncoder().encode('draft'));
 * await doc.append(new TextEncoder().encode(' more'), { ifVersion: v1.version });
 * console.log(new TextDecoder().decode(await doc.read()));          // 'draft more'
 * console.log(await doc.read({ version: v1.version }));             // any past version
 * for (const v of await doc.versions()) console.log(v.version, v.sizeBytes);
 * await store.close();
 */
export { connect, OceanStore, type ConnectOptions, type CreateOptions } from './oceanstore.ts';
export { ObjectHandle, type ByteSource, type ObjectStat, type ReadOptions, type VersionInfo, type WriteOptions } from './object.ts';
export type { WriteResult } from './result.ts';
export { loadOrCreateIdentity, newIdentity, identityFromSecret, type Identity } from './identity.ts';
export * from './clauses.ts';
export {
  OceanStoreError,
  InvalidArgumentError,
  IntegrityError,
  UnauthorizedError,
  PredicateFailedError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  ConfigError,
  ReplayError,
  SessionClosedError,
} from '../core/errors.ts';
