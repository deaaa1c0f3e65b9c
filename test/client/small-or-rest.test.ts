/**
 * A streamed write that ends within inlineBytesMax is written inline (client/object.ts
 * smallOrRest): the CLI passes every file as a stream, and a 6-byte put took the block path (a
 * latest probe under the write's 30-minute deadline, then a block uploaded to 2f+1 servers).
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { inlineBytesMax, smallOrRest, type ByteSource } from '../../client/object.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-small-or-rest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed = 1): Uint8Array => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

async function collect(source: ByteSource): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of source as AsyncIterable<Uint8Array>) out.push(chunk);
  return out;
}

/** An async source of `chunks` that records whether it was closed early. */
function tracked(chunks: Uint8Array[]): { source: AsyncIterable<Uint8Array>; closed: () => boolean; finished: () => boolean } {
  let closed = false;
  let finished = false;
  const source = (async function* () {
    try {
      yield* chunks;
      finished = true;
    } finally {
      if (!finished) closed = true;
    }
  })();
  return { source, closed: () => closed, finished: () => finished };
}

describe('smallOrRest', () => {
  it('gives a source that ends within inlineBytesMax as its bytes (async, sync, a file stream, empty)', async () => {
    const parts = [bytes(10), bytes(20, 2), bytes(30, 3)];
    const whole = new Uint8Array([...parts[0]!, ...parts[1]!, ...parts[2]!]);
    expect(await smallOrRest(tracked(parts).source)).toEqual(whole);
    expect(await smallOrRest(parts)).toEqual(whole);
    expect(await smallOrRest([bytes(inlineBytesMax)])).toEqual(bytes(inlineBytesMax));
    expect(await smallOrRest([])).toEqual(new Uint8Array(0));
    const file = join(dir, 'hello.txt');
    writeFileSync(file, 'hello\n');
    const fromFile = await smallOrRest(createReadStream(file) as AsyncIterable<Uint8Array>);
    expect(fromFile).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(fromFile as Uint8Array).toString()).toBe('hello\n');
  });

  it('gives a longer source back as one yielding the same chunks, what it read first included', async () => {
    const parts = [bytes(40_000), bytes(40_000, 2), bytes(5, 3), bytes(70_000, 4)];
    const t = tracked(parts);
    const rest = await smallOrRest(t.source);
    expect(rest).not.toBeInstanceOf(Uint8Array);
    expect(await collect(rest as ByteSource)).toEqual(parts);
    expect(t.finished()).toBe(true);
    expect(await collect((await smallOrRest([bytes(inlineBytesMax + 1)])) as ByteSource)).toEqual([bytes(inlineBytesMax + 1)]);
  });

  it('closes the source when the rest is left early (a failed upload) or a chunk is not bytes', async () => {
    const t = tracked([bytes(inlineBytesMax), bytes(10), bytes(10), bytes(10)]);
    const rest = (await smallOrRest(t.source)) as AsyncIterable<Uint8Array>;
    for await (const _chunk of rest) break;
    expect(t.closed()).toBe(true);
    const bad = tracked([bytes(10), [1, 2, 3] as unknown as Uint8Array, bytes(10)]);
    await expect(smallOrRest(bad.source)).rejects.toThrow(InvalidArgumentError);
    expect(bad.closed()).toBe(true);
  });
});
