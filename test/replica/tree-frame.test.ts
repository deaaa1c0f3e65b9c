/**
 * encodeTreeFrame: a tree message encoded with room for the host's channel byte in front, in one
 * exactly sized allocation, and the same bytes as encodeTreeMessage after it (so peers decode it
 * whichever way it was written).
 */
import { describe, expect, it } from 'vitest';
import { decodeTreeMessage, encodeTreeFrame, encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';

describe('tree frames', () => {
  it('a frame leaves the reserved bytes in front and is the message encoding after them', () => {
    const reply: TreeMessage = {
      type: 'read-reply',
      requestId: 7,
      status: 'ok',
      certificate: new Uint8Array(100).fill(1),
      heartbeat: null,
      blocks: [
        { kind: 'root', bytes: new Uint8Array(200).fill(2) },
        { kind: 'data', bytes: new Uint8Array(1 << 20).fill(3) },
      ],
    };
    const small: TreeMessage = { type: 'fetch', aguid: new Uint8Array(32).fill(4), fromVersion: 3 };
    for (const m of [reply, small]) {
      const frame = encodeTreeFrame(m, 1);
      expect(frame[0]).toBe(0);
      expect(frame.buffer.byteLength).toBe(frame.length); // one exactly sized allocation
      expect(Buffer.from(frame.subarray(1)).equals(Buffer.from(encodeTreeMessage(m)))).toBe(true);
      expect(decodeTreeMessage(frame.subarray(1)).type).toBe(m.type);
    }
  });
});
