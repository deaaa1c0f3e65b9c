/**
 * A write's block upload that fails must fail the write with that error: ObjectHandle.uploadBlocks
 * used to drop a rejected upload from its in-flight set before anyone awaited it, and the block's
 * placeholder (an all-zero BGUID) went into the update. A stub session; no processes.
 */
import { expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { TimeoutError } from '../../core/errors.ts';
import { ObjectHandle } from '../../client/object.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

it('a block upload that fails fails the write with its error, and no update is submitted', async () => {
  let uploads = 0;
  let submits = 0;
  const session = {
    view: { f: 1, ring: [], secondaries: [] },
    putBlock: async (block: Uint8Array) => {
      uploads++;
      if (uploads === 1) throw new TimeoutError('block upload: no answer within 30000 ms');
      return nodeCrypto.sha256([block]);
    },
    submit: async () => {
      submits++;
      throw new Error('no update should be submitted');
    },
  };
  const secretKey = new Uint8Array(32).fill(3);
  const identity = { publicKey: signerOf(nodeCrypto, secretKey).publicKey, secretKey };
  const handle = new ObjectHandle(new Uint8Array(32), session as never, identity, nodeCrypto, {} as never, () => 1);
  // The first block's upload fails while the source is still being read (stdin, a network stream).
  // (Over 64 KiB: a stream that ends within that is written inline, no blocks uploaded.)
  async function* slowSource(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(70_000).fill(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    yield new Uint8Array(70_000).fill(2);
  }
  // write() needs the object's block size (here 4 KiB); a handle that created the object knows it.
  handle.noteCreated(4096);
  await expect(handle.write(slowSource())).rejects.toBeInstanceOf(TimeoutError);
  expect(submits).toBe(0);
});
