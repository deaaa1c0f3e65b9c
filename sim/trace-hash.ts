/**
 * A running 64-bit FNV-1a style fingerprint (two 32-bit lanes) of the simulator's event trace.
 * Not cryptographic: it only has to tell two runs apart, cheaply, on every event.
 */
export class TraceHash {
  private a = 0x811c9dc5;
  private b = 0x01000193 ^ 0x5bd1e995;
  private count = 0;

  add(text: string): void {
    let a = this.a;
    let b = this.b;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
    }
    this.a = Math.imul(a ^ 0x0a, 0x01000193) >>> 0;
    this.b = (b ^ this.count) >>> 0;
    this.count++;
  }

  hex(): string {
    return (this.a >>> 0).toString(16).padStart(8, '0') + (this.b >>> 0).toString(16).padStart(8, '0') + ':' + this.count;
  }
}
