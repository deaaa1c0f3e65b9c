/**
 * A one-line progress bar on stderr, shown only on a terminal and only for transfers over a few
 * MB (small ones finish before a bar would help).
 */
const showBytesMin = 4 * 1024 * 1024;
const redrawMsMin = 100;

export class Progress {
  private bytes = 0;
  private readonly startMs = Date.now();
  private drawnMs = 0;
  private readonly enabled: boolean;

  constructor(
    private readonly label: string,
    private readonly totalBytes: number | null,
    quiet = false,
  ) {
    this.enabled = !quiet && process.stderr.isTTY === true && (totalBytes === null || totalBytes >= showBytesMin);
  }

  add(bytes: number): void {
    this.bytes += bytes;
    const now = Date.now();
    if (!this.enabled || now - this.drawnMs < redrawMsMin || this.bytes < showBytesMin) return;
    this.drawnMs = now;
    this.draw(now);
  }

  done(): void {
    if (!this.enabled || this.bytes < showBytesMin) return;
    this.draw(Date.now());
    process.stderr.write('\n');
  }

  private draw(now: number): void {
    const mb = this.bytes / 2 ** 20;
    const rate = mb / Math.max(0.001, (now - this.startMs) / 1000);
    let bar = '';
    if (this.totalBytes) {
      const width = 30;
      const filled = Math.round((this.bytes / this.totalBytes) * width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(Math.max(0, width - filled))}] ${Math.floor((100 * this.bytes) / this.totalBytes)}% `;
    }
    process.stderr.write(`\r${this.label} ${bar}${mb.toFixed(1)} MiB  ${rate.toFixed(1)} MiB/s   `);
  }
}
