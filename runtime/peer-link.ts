/**
 * One peer's outgoing side: the current authenticated socket (if any) and a bounded queue.
 * Frames go straight to the socket while its kernel/ws buffer is below `bufferedBytesMax`;
 * above that (a slow or stalled peer) they wait in the queue, and when the queue is full new
 * frames are refused. The queue outlives a connection, so a short reconnect loses nothing.
 */
import { WebSocket } from 'ws';
import type { FrameSealer } from './frame-auth.ts';

export interface LinkLimits {
  readonly queueFramesMax: number;
  readonly queueBytesMax: number;
  /** Bytes the socket may hold unsent before we stop writing to it and queue instead. */
  readonly bufferedBytesMax: number;
}

export class PeerLink {
  private ws: WebSocket | null = null;
  /** Tags frames for the current connection (keys and frame count are per connection). */
  private sealer: FrameSealer | null = null;
  private readonly queue: Uint8Array[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  private pumpScheduled = false;
  /** The sealer whose batch's tag (and its socket's uncork) is scheduled for the end of this turn. */
  private scheduledSealer: FrameSealer | null = null;
  /** Heartbeat periods since the peer's last pong. */
  private periodsSilent = 0;

  constructor(
    readonly peer: string,
    private readonly limits: LinkLimits,
    private readonly onSent: (bytes: number) => void,
  ) {}

  get isOpen(): boolean {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  get queuedFrames(): number {
    return this.queue.length - this.queueHead;
  }

  /**
   * Makes `ws` the connection to this peer (ending a previous one) and drains the queue into it.
   * The previous one is terminated, not closed: a close waits up to 30 s for the peer's answer and
   * keeps reading meanwhile, so a client reconnecting with one key could hold a socket's worth of
   * memory per reconnect.
   */
  attach(ws: WebSocket, sealer: FrameSealer): void {
    if (this.ws && this.ws !== ws) this.ws.terminate();
    this.ws = ws;
    this.sealer = sealer;
    this.periodsSilent = 0;
    ws.on('pong', () => {
      if (this.ws === ws) this.periodsSilent = 0;
    });
    this.pump();
  }

  /**
   * Called every heartbeat period: a peer that answered none of the last `periodsMax` pings is cut
   * off (a half-open socket after a host crash or partition never sees a FIN), so the dialer
   * reconnects. Several periods, not one: an overloaded peer's event loop can stall for seconds,
   * and cutting it then only loses frames. Returns true if the link was cut.
   */
  heartbeat(periodsMax: number): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (this.periodsSilent >= periodsMax) {
      ws.terminate();
      return true;
    }
    this.periodsSilent += 1;
    ws.ping();
    return false;
  }

  detach(ws: WebSocket): void {
    if (this.ws === ws) {
      this.ws = null;
      this.sealer = null;
    }
  }

  send(frame: Uint8Array): boolean {
    if (this.queuedFrames === 0 && this.canWrite()) {
      this.write(frame);
      return true;
    }
    if (this.queuedFrames >= this.limits.queueFramesMax || this.queueBytes + frame.length > this.limits.queueBytesMax) {
      return false;
    }
    this.queue.push(frame);
    this.queueBytes += frame.length;
    this.schedulePump();
    return true;
  }

  close(): void {
    this.ws?.terminate();
    this.ws = null;
    this.sealer = null;
  }

  private canWrite(): boolean {
    return this.isOpen && this.ws!.bufferedAmount < this.limits.bufferedBytesMax;
  }

  private write(frame: Uint8Array): void {
    const ws = this.ws!;
    const sealer = this.sealer!;
    this.endBatchWhenTurnEnds(ws, sealer);
    // The callback fires once ws has handed the bytes to the kernel: the moment to try the queue again.
    ws.send(frame, { binary: true }, () => this.schedulePump());
    if (sealer.add(frame)) sendTag(ws, sealer);
    this.onSent(frame.length);
  }

  /**
   * A host step sends all its effects synchronously, often several frames to one peer (a group
   * commit releases many steps at once). They share one tag (frame-auth.ts), sent when the current
   * turn's synchronous work ends, and the socket is corked until then, so they reach the kernel in
   * one writev instead of one system call each: on a ring server the per-frame writes were a tenth
   * of its CPU.
   */
  private endBatchWhenTurnEnds(ws: WebSocket, sealer: FrameSealer): void {
    // Keyed by sealer, not by link: a connection replaced mid-turn gets its own tag and uncork.
    if (this.scheduledSealer === sealer) return;
    this.scheduledSealer = sealer;
    const socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    socket?.cork();
    process.nextTick(() => {
      if (this.scheduledSealer === sealer) this.scheduledSealer = null;
      sendTag(ws, sealer);
      socket?.uncork();
    });
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.queuedFrames === 0) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.queuedFrames > 0 && this.canWrite()) {
      const frame = this.queue[this.queueHead]!;
      this.queue[this.queueHead] = undefined as unknown as Uint8Array;
      this.queueHead += 1;
      this.queueBytes -= frame.length;
      this.write(frame);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }
}

/** The tag of the frames written to `ws` since the last one, as a text record (frames are binary). */
function sendTag(ws: WebSocket, sealer: FrameSealer): void {
  const tag = sealer.seal();
  if (tag && ws.readyState === WebSocket.OPEN) ws.send(Buffer.from(tag).toString('hex'), { binary: false });
}
