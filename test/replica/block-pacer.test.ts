/**
 * BlockPacer: a child's fetch-blocks sized to what its link carried last time (replica/block-pacer.ts).
 * The whole-tree effect (never leaving an honest parent on a slow link) is in honest-catch-up.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { BlockPacer, askBytesMin, replyTargetMs } from '../../replica/block-pacer.ts';
import { treeLimits } from '../../replica/messages.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

describe('BlockPacer', () => {
  it('asks for one block first (its size is not known yet), then at least askBytesMin worth', () => {
    const p = new BlockPacer();
    expect(p.countToAsk('a', 5_000)).toBe(1);
    p.asked('a', 1, 0);
    // 1 KiB blocks over a 100 ms round trip: the rate shown is tiny, the floor decides.
    expect(p.answered('a', 1, KiB, 100)).toBe(true);
    expect(p.countToAsk('a', 5_000)).toBe(askBytesMin / KiB);
    // Never more than is missing, nor more than a request may name.
    expect(p.countToAsk('a', 7)).toBe(7);
    p.asked('a', 1, 200);
    p.answered('a', 1, KiB, 201);
    expect(p.countToAsk('a', 100_000)).toBe(treeLimits.fetchBlocksMax);
    expect(p.countToAsk('a', 0)).toBe(0);
  });

  it('asks for replyTargetMs of the rate the last whole answer showed, up to blocksReplyBytesMax', () => {
    const p = new BlockPacer();
    p.asked('a', 1, 0);
    // 1 MiB in 700 ms (wire and round trip): 1.46 MiB/s, so 2.2 MiB a request: 2 whole blocks.
    p.answered('a', 1, MiB, 700);
    expect(p.rateFrom('a')).toBeCloseTo(MiB / 700);
    expect(p.countToAsk('a', 100)).toBe(Math.floor(((MiB / 700) * replyTargetMs) / MiB));
    expect(p.countToAsk('a', 100)).toBe(2);
    // A fast link: capped at one reply's bytes (4 blocks of 1 MiB).
    p.asked('a', 2, 1_000);
    p.answered('a', 2, 2 * MiB, 1_010);
    expect(p.countToAsk('a', 100)).toBe(treeLimits.blocksReplyBytesMax / MiB);
    // The link slows down: the next request follows the last answer, not the best one.
    p.asked('a', 4, 2_000);
    p.answered('a', 4, 4 * MiB, 6_000);
    expect(p.countToAsk('a', 100)).toBe(1);
  });

  it('a rate measured from one parent does not size requests to another', () => {
    const p = new BlockPacer();
    p.asked('a', 1, 0);
    p.answered('a', 1, 256 * KiB, 10);
    expect(p.countToAsk('a', 100)).toBe(treeLimits.blocksReplyBytesMax / (256 * KiB));
    expect(p.countToAsk('b', 100)).toBe(askBytesMin / (256 * KiB));
  });

  it('an answer is whole only when it brings every block asked for, from whom they were asked', () => {
    const p = new BlockPacer();
    p.asked('a', 1, 0);
    p.answered('a', 1, 256 * KiB, 100);
    p.asked('a', 4, 200);
    expect(p.answered('a', 3, 768 * KiB, 400)).toBe(false);
    // Nothing outstanding any more: a late or unasked answer is not whole, and measures nothing.
    const rate = p.rateFrom('a');
    expect(p.answered('a', 4, MiB, 401)).toBe(false);
    expect(p.rateFrom('a')).toBe(rate);
    p.asked('a', 2, 500);
    expect(p.answered('b', 2, 512 * KiB, 600)).toBe(false);
    expect(p.answered('a', 2, 512 * KiB, 700)).toBe(true);
  });

  it('waits for the outstanding answer up to a timeout; a re-ask keeps the first time, so the rate is never overstated', () => {
    const p = new BlockPacer();
    p.asked('a', 1, 0);
    p.answered('a', 1, 256 * KiB, 100);
    p.asked('a', 1, 1_000);
    expect(p.waiting('a', 3_999, 3_000)).toBe(true);
    expect(p.waiting('b', 1_500, 3_000)).toBe(false);
    expect(p.waiting('a', 4_000, 3_000)).toBe(false);
    p.asked('a', 1, 4_000);
    expect(p.lastAskMs).toBe(4_000);
    // The answer to the first ask arrives just after the re-ask: measured from the first.
    p.answered('a', 1, 256 * KiB, 4_010);
    expect(p.rateFrom('a')).toBeCloseTo((256 * KiB) / 3_010);
  });
});
