/**
 * Remembers verification results by the exact certificate / heartbeat bytes, so a member (or a
 * reader) pays the BLS pairing check (~20 ms here, NOTES.md) once per certificate rather than once
 * per push, fetch or read. Only verdicts about identical bytes are reused, so it is as strict as
 * the trust it wraps. Bounded; oldest entries go first.
 */
import { toHex } from '../core/bytes.ts';
import { checkArgument } from '../core/errors.ts';
import type { CommitStatement, HeartbeatStatement, ReplicaTrust } from './types.ts';

export class CachingTrust implements ReplicaTrust {
  private readonly commits = new Map<string, CommitStatement | null>();
  private readonly heartbeats = new Map<string, HeartbeatStatement | null>();
  hits = 0;
  misses = 0;

  constructor(
    private readonly inner: ReplicaTrust,
    private readonly entriesMax = 4096,
  ) {
    checkArgument(Number.isSafeInteger(entriesMax) && entriesMax > 0, 'entriesMax', 'a positive integer');
  }

  verifyCommit(certificate: Uint8Array): CommitStatement | null {
    return this.lookup(this.commits, certificate, (b) => ownedCommit(this.inner.verifyCommit(b)));
  }

  verifyHeartbeat(heartbeat: Uint8Array): HeartbeatStatement | null {
    return this.lookup(this.heartbeats, heartbeat, (b) => ownedHeartbeat(this.inner.verifyHeartbeat(b)));
  }

  private lookup<T>(map: Map<string, T | null>, bytes: Uint8Array, verify: (b: Uint8Array) => T | null): T | null {
    if (!(bytes instanceof Uint8Array)) return null;
    const key = toHex(bytes);
    if (map.has(key)) {
      this.hits++;
      return map.get(key)!;
    }
    this.misses++;
    const verdict = verify(bytes);
    if (map.size >= this.entriesMax) map.delete(map.keys().next().value as string);
    map.set(key, verdict);
    return verdict;
  }
}

/*
 * A statement's byte fields are views into the certificate it was read from, itself often a view
 * into a received frame: cached verdicts kept up to 4,096 whole frames alive (session-22 review).
 * Copied (32 bytes each), a verdict keeps nothing else.
 */
function ownedCommit(s: CommitStatement | null): CommitStatement | null {
  return s && { ...s, aguid: new Uint8Array(s.aguid), vguid: new Uint8Array(s.vguid), updateDigest: new Uint8Array(s.updateDigest) };
}

function ownedHeartbeat(s: HeartbeatStatement | null): HeartbeatStatement | null {
  return s && { ...s, aguid: new Uint8Array(s.aguid), vguid: new Uint8Array(s.vguid) };
}
