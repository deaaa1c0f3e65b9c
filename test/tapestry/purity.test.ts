import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const coreDir = join(import.meta.dirname, '../../tapestry');

describe('tapestry core purity (STYLE.md: cores touch no world)', () => {
  it('core files import no node:* module and use no Date, Math.random, timers, process or async', () => {
    const files = readdirSync(coreDir).filter((f) => f.endsWith('.ts') && f !== 'sim-scenario.ts');
    expect(files).toContain('node.ts');
    for (const f of files) {
      const text = readFileSync(join(coreDir, f), 'utf8');
      for (const banned of [/from 'node:/, /\bDate\b/, /Math\.random/, /setTimeout|setInterval/, /\bprocess\./, /\basync\b/, /\bawait\b/]) {
        expect(banned.test(text), `${f} must not match ${banned}`).toBe(false);
      }
      expect(text, `${f} must not import the simulator`).not.toMatch(/from '\.\/sim\//);
    }
  });
});
