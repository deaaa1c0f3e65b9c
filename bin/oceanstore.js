#!/usr/bin/env node
// Entry for `npx oceanstore`. cli/launch.mjs runs the object verbs (put, get, ...) straight from
// their prebuilt bundle when it is fresh, and everything else from the TypeScript sources through
// tsx's loader, so no build step stands between `npm ci` and a working CLI.
await import('../cli/launch.mjs');
