/**
 * A small versioned key-value service for protocol tests and the simulator, shaped like the object
 * service: each key is an "object" with a version number and a chained version hash (its VGUID);
 * a key `<owner>/<name>` may only be written by the client whose key hex starts with <owner>
 * (authorisation); an operation may demand the current version (a predicate); commits and aborts
 * both yield certificate statements, as in Pond.
 *
 * Operation: msgpack [key: string, expectedVersion: int (-1 = any), value: bytes].
 * Result:    msgpack ['ok', version, vguid] | ['conflict', version] | ['unauthorized'] | ['malformed'].
 * Statement: msgpack ['kv', key, version, vguid, timestampMs] for a commit.
 */
import { toHex } from '../core/bytes.ts';
import { asBytesField, asList, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { HashTag, taggedHash, type Crypto } from '../core/crypto.ts';
import type { KvStore } from '../core/store.ts';
import type { ExecutionContext, ExecutionResult, ReplicatedService } from './service.ts';

interface Entry {
  version: number;
  vguid: Uint8Array;
}

const keyLengthMax = 256;
const valueBytesMax = 1 << 20;
const ownerHexLength = 8;
const heartbeatKeysMax = 64;
const prefix = 'svc/kv/';
const zeroVguid = new Uint8Array(32);

export function kvOperation(key: string, expectedVersion: number, value: Uint8Array): Uint8Array {
  return encode([key, expectedVersion, value]);
}

export function kvKeyFor(clientPublicKey: Uint8Array, name: string): string {
  return `${toHex(clientPublicKey).slice(0, ownerHexLength)}/${name}`;
}

export interface KvStatement {
  key: string;
  version: number;
  vguidHex: string;
  timestampMs: number;
}

export function parseKvStatement(bytes: Uint8Array): KvStatement | null {
  try {
    const t = asTuple(decode(bytes, 4096, 'kv statement'), 'kv statement', 5);
    if (t[0] !== 'kv' && t[0] !== 'kv-heartbeat') return null;
    return {
      key: asString(t[1], 'key', keyLengthMax),
      version: asUint(t[2], 'version'),
      vguidHex: toHex(asBytesField(t[3], 'vguid', { bytes: 32 })),
      timestampMs: asUint(t[4], 'timestampMs'),
    };
  } catch {
    return null;
  }
}

export class KvService implements ReplicatedService {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly crypto: Crypto,
    private readonly store: KvStore,
  ) {
    for (const k of store.keys(prefix)) {
      const t = asTuple(decode(store.get(k)!, 128, 'kv entry'), 'kv entry', 2);
      this.entries.set(k.slice(prefix.length), { version: asUint(t[0], 'version'), vguid: asBytesField(t[1], 'vguid', { bytes: 32 }) });
    }
  }

  get(key: string): { version: number; vguidHex: string } | undefined {
    const e = this.entries.get(key);
    return e && { version: e.version, vguidHex: toHex(e.vguid) };
  }

  keys(): string[] {
    return [...this.entries.keys()].sort();
  }

  execute(clientKey: Uint8Array, operation: Uint8Array, context: ExecutionContext): ExecutionResult {
    let key: string, expected: number, value: Uint8Array;
    try {
      const t = asTuple(decode(operation, valueBytesMax + 1024, 'kv operation'), 'kv operation', 3);
      key = asString(t[0], 'key', keyLengthMax);
      expected = typeof t[1] === 'number' && t[1] === -1 ? -1 : asUint(t[1], 'expectedVersion');
      value = asBytesField(t[2], 'value', { bytesMax: valueBytesMax });
    } catch {
      return { result: encode(['malformed']), statement: null };
    }
    const owner = key.slice(0, key.indexOf('/'));
    if (owner.length !== ownerHexLength || !toHex(clientKey).startsWith(owner)) {
      return { result: encode(['unauthorized']), statement: null };
    }
    const current = this.entries.get(key) ?? { version: 0, vguid: zeroVguid };
    if (expected !== -1 && expected !== current.version) {
      return { result: encode(['conflict', current.version]), statement: null };
    }
    const version = current.version + 1;
    const vguid = taggedHash(this.crypto, HashTag.rootBlock, current.vguid, encode([key, version]), value);
    this.entries.set(key, { version, vguid });
    this.store.put(prefix + key, encode([version, vguid]));
    return { result: encode(['ok', version, vguid]), statement: encode(['kv', key, version, vguid, context.timestampMs]) };
  }

  heartbeatStatements(timestampMs: number): Uint8Array[] {
    return this.keys()
      .slice(0, heartbeatKeysMax)
      .map((key) => {
        const e = this.entries.get(key)!;
        return encode(['kv-heartbeat', key, e.version, e.vguid, timestampMs]);
      });
  }

  snapshot(): Uint8Array {
    return encode(this.keys().map((k) => [k, this.entries.get(k)!.version, this.entries.get(k)!.vguid]));
  }

  restore(snapshot: Uint8Array): boolean {
    let parsed: [string, Entry][];
    try {
      parsed = asList(decode(snapshot, 1 << 28, 'kv snapshot'), 'kv snapshot', 1 << 22, (v) => {
        const t = asTuple(v, 'kv snapshot entry', 3);
        return [asString(t[0], 'key', keyLengthMax), { version: asUint(t[1], 'version'), vguid: asBytesField(t[2], 'vguid', { bytes: 32 }) }];
      });
    } catch {
      return false;
    }
    for (const k of this.store.keys(prefix)) this.store.delete(k);
    this.entries.clear();
    for (const [k, e] of parsed) {
      this.entries.set(k, e);
      this.store.put(prefix + k, encode([e.version, e.vguid]));
    }
    return true;
  }
}
