#!/usr/bin/env node
// Entry for `npx oceanstore`: the sources are TypeScript, run through tsx's loader so no build
// step stands between `npm ci` and a working CLI.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
