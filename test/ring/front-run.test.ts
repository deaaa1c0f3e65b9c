/**
 * A copy of a writer's signed update, submitted before the writer's own request (session-21
 * review): by a faulty primary, which sees every request first, or by anyone who read the update
 * on the wire (frames are authenticated, not encrypted). Before the fix the copy ran, the writer's
 * own request aborted 'replay', and the SDK, told "not applied", signed the same append again: it
 * ran twice. Now a copy under another key is refused ('unauthorized', no state changes), and one
 * under the writer's key needs the writer's request signature (the update's own no longer stands
 * for it: it does not sign the request's nonce or reply address).
 */
import { describe, expect, it } from 'vitest';
import { aguidOf, signerOf } from '../../core/crypto.ts';
import type { Clause } from '../../core/update/update.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import { readVersionRange } from '../../replica/version-walk.ts';
import { decodeRootBlock } from '../../core/version/root-block.ts';
import { ObjectHandle } from '../../client/object.ts';
import { decodeObjectResult, type ObjectResult } from '../../ring/object-result.ts';
import type { ObjectService } from '../../ring/object-service.ts';
import { buildCluster, secretKeyFor, type Cluster } from '../../ring/sim-cluster.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const text = (s: string) => new TextEncoder().encode(s);

/** A ring with client-0 the writer of 'doc' (holding "hello"), client-1 anyone else; results by client. */
function writerRing(seed: number) {
  const c = buildCluster({ seed, f: 1, clientCount: 2, crypto: nodeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 } });
  const results: ObjectResult[][] = [[], []];
  c.sim.onOutput((node, e) => {
    if (e.kind === 'completed') results[node === 'client-0' ? 0 : 1]!.push(decodeObjectResult(e.result));
  });
  const secretKey = secretKeyFor(nodeCrypto, seed, 'client', 0);
  const writer = signerOf(nodeCrypto, secretKey);
  const aguid = aguidOf(nodeCrypto, writer.publicKey, 'doc');
  const update = (nonce: number, clauses: Clause[]) => encodeUpdate(signUpdate(nodeCrypto, writer, { aguid, writerPublicKey: writer.publicKey, nonce, clauses }));
  c.submit(0, update(1, [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'doc', blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }, { kind: 'append', bytes: text('hello') }] }]));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  const service = (i = 0) => c.replica(i)!.service as ObjectService;
  const content = () => {
    const head = service().headOf(aguid)!;
    const size = decodeRootBlock(service().blocks.get(head.vguid, 'root')!).sizeBytes;
    return { version: head.version, text: new TextDecoder().decode(readVersionRange(service().blocks, head.vguid, 0, size)!) };
  };
  /** Runs client i's next submission to completion; its result. */
  const submitted = (i: number, operation: Uint8Array): ObjectResult => {
    const before = c.completed[i]!;
    c.submit(i, operation);
    expect(c.sim.runUntil(() => c.completed[i] === before + 1, 10_000)).toBe(true);
    return results[i]!.at(-1)!;
  };
  return { c, writer, secretKey, aguid, update, content, submitted };
}

/** The SDK's handle on 'doc', submitting through sim client 0, with `first` run before each of its submissions. */
function handleOn(ring: ReturnType<typeof writerRing>, first: (bytes: Uint8Array, attempt: number) => void) {
  let attempt = 0;
  const session = {
    view: { f: 1, ring: [], secondaries: [] },
    submit: async (bytes: Uint8Array) => {
      first(bytes, ++attempt);
      const before = ring.c.completed[0]!;
      ring.c.submit(0, bytes);
      expect(ring.c.sim.runUntil(() => ring.c.completed[0] === before + 1, 10_000)).toBe(true);
      return { ...lastCompletion(ring.c), certified: new Promise<Uint8Array>(() => undefined) };
    },
  };
  let nonce = 1;
  return new ObjectHandle(ring.aguid, session as never, { publicKey: ring.writer.publicKey, secretKey: ring.secretKey }, nodeCrypto, {} as never, () => ++nonce);
}

const completions = new WeakMap<Cluster, { seq: number; nonce: number; result: Uint8Array }[]>();
function lastCompletion(c: Cluster) {
  return completions.get(c)!.at(-1)!;
}
function recordCompletions(c: Cluster): void {
  const list: { seq: number; nonce: number; result: Uint8Array }[] = [];
  completions.set(c, list);
  c.sim.onOutput((node, e) => {
    if (node === 'client-0' && e.kind === 'completed') list.push({ seq: e.seq, nonce: e.nonce, result: e.result });
  });
}

describe('a copy of an update submitted before its writer does', () => {
  it('under another key: refused unauthorized, nothing changes; the writer\'s own request commits once', () => {
    const ring = writerRing(41);
    const op = ring.update(2, [{ predicates: [], actions: [{ kind: 'append', bytes: text('X') }] }]);
    expect(ring.submitted(1, op)).toMatchObject({ outcome: 'abort', reason: 'unauthorized' });
    expect(ring.content()).toEqual({ version: 0, text: 'hello' });
    expect(ring.submitted(0, op)).toMatchObject({ outcome: 'commit', version: 1 });
    expect(ring.content()).toEqual({ version: 1, text: 'helloX' });
  });

  it('under the writer\'s key without the writer\'s request signature (the update\'s own once stood for it): never runs', () => {
    const ring = writerRing(43);
    const op = ring.update(2, [{ predicates: [], actions: [{ kind: 'append', bytes: text('X') }] }]);
    ring.c.sim.send('client-1', 'ring-0', { kind: 'request', clientKey: ring.writer.publicKey, nonce: 2, replyTo: 'client-1', operation: op, signature: new Uint8Array(64) } as never);
    ring.c.sim.runFor(500);
    expect(ring.content()).toEqual({ version: 0, text: 'hello' });
    expect(ring.c.replica(0)!.drops.get('bad-signature')).toBeGreaterThan(0);
    expect(ring.submitted(0, op)).toMatchObject({ outcome: 'commit', version: 1 });
    expect(ring.content()).toEqual({ version: 1, text: 'helloX' });
  });

  it('through the SDK: an append front-run by another key is applied once, and ifVersion writes report the truth', async () => {
    const ring = writerRing(45);
    recordCompletions(ring.c);
    // Another ring client submits each first attempt's bytes first (as a faulty primary could order them).
    const frontRun = (bytes: Uint8Array, attempt: number) => {
      if (attempt === 1) ring.submitted(1, bytes);
    };
    const handle = handleOn(ring, frontRun);
    expect((await handle.append(text('X'))).version).toBe(1);
    expect(ring.content()).toEqual({ version: 1, text: 'helloX' }); // before: 'helloXX', version 2
    const ifVersion = handleOn(ring, frontRun);
    expect((await ifVersion.append(text('Y'), { ifVersion: 1 })).version).toBe(2); // before: PredicateFailedError, though it ran
    expect(ring.content()).toEqual({ version: 2, text: 'helloXY' });
  });
});
