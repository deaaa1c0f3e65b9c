/**
 * Read options are checked before anything is sent: `maxAgeMs: 0` used to mean "no freshness
 * demand" on the wire and silently read without one; a negative or fractional version, offset or
 * length is refused by name too. A stub session that counts reads; no processes.
 */
import { expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { ObjectHandle, type ReadOptions } from '../../client/object.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

/** A handle over a stub session that counts the reads sent (none should be). */
function countingHandle(): { handle: ObjectHandle; reads: () => number } {
  let reads = 0;
  const session = {
    view: { f: 1, ring: [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) })), secondaries: [] },
    read: async () => {
      reads++;
      throw new Error('no read should be sent');
    },
  };
  return { handle: new ObjectHandle(new Uint8Array(32), session as never, {} as never, nodeCrypto, {} as never, () => 1), reads: () => reads };
}

it('bad version, offset, length or maxAgeMs: InvalidArgumentError naming it, and no read sent', async () => {
  const { handle, reads } = countingHandle();
  const bad: [string, ReadOptions][] = [
    ['maxAgeMs', { maxAgeMs: 0 }],
    ['maxAgeMs', { maxAgeMs: -5 }],
    ['maxAgeMs', { maxAgeMs: 1.5 }],
    ['maxAgeMs', { maxAgeMs: Number.NaN }],
    ['version', { version: -1 }],
    ['version', { version: 2.5 }],
    ['offset', { offset: -1 }],
    ['length', { length: -1 }],
    ['length', { length: Number.POSITIVE_INFINITY }],
  ];
  for (const [name, options] of bad) {
    for (const call of [() => handle.read(options), () => handle.stat(options)]) {
      const error = await call().then(
        () => null,
        (e: Error) => e,
      );
      expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
      expect(error!.message).toContain(`'${name}'`);
    }
  }
  expect(reads()).toBe(0);
});

it('a stream with a bad chunkBytes or readAheadChunks: InvalidArgumentError naming it, and no read sent (they were checked only after the head read)', async () => {
  const { handle, reads } = countingHandle();
  const bad: [string, ReadOptions][] = [
    ['chunkBytes', { chunkBytes: 0 }],
    ['chunkBytes', { chunkBytes: 1.5 }],
    ['chunkBytes', { chunkBytes: 2 ** 40 }],
    ['readAheadChunks', { readAheadChunks: 0 }],
    ['readAheadChunks', { readAheadChunks: 65 }],
  ];
  for (const [name, options] of bad) {
    const error = await handle.readStream(options).next().then(
      () => null,
      (e: Error) => e,
    );
    expect(error, JSON.stringify(options)).toBeInstanceOf(InvalidArgumentError);
    expect(error!.message).toContain(`'${name}'`);
  }
  expect(reads()).toBe(0);
});
