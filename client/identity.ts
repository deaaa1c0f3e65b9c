/**
 * A client's signing identity: an ed25519 key kept in a JSON file (mode 0600). The CLI signs with
 * --identity FILE, else OCEANSTORE_IDENTITY, else ~/.oceanstore/identity.json, and creates only the
 * last on first use (a mistyped path made a new key; session-22 review). The SDK's
 * loadOrCreateIdentity creates the file it is given.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fromHex, toHex } from '../core/bytes.ts';
import { ConfigError } from '../core/errors.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';

export interface Identity {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** ~/.oceanstore/identity.json: the one identity file the CLI makes by itself. */
export function homeIdentityPath(): string {
  return join(homedir(), '.oceanstore', 'identity.json');
}

export function defaultIdentityPath(): string {
  return process.env.OCEANSTORE_IDENTITY ?? homeIdentityPath();
}

/** A fresh random identity (not saved). */
export function newIdentity(): Identity {
  const secretKey = new Uint8Array(randomBytes(32));
  return { secretKey, publicKey: nodeCrypto.ed25519PublicKey(secretKey) };
}

export function identityFromSecret(secretKey: Uint8Array): Identity {
  if (secretKey.length !== 32) throw new ConfigError('an identity secret key is 32 bytes');
  return { secretKey, publicKey: nodeCrypto.ed25519PublicKey(secretKey) };
}

/** Reads the identity at `path`, creating it (and its folder, private) if it does not exist. */
export function loadOrCreateIdentity(path = defaultIdentityPath()): Identity {
  if (!existsSync(path)) {
    const identity = newIdentity();
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, JSON.stringify({ secretKey: toHex(identity.secretKey), publicKey: toHex(identity.publicKey) }, null, 2) + '\n', { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, path);
    } catch (error) {
      // A folder above it that is a file (EEXIST/ENOTDIR), no permission, a read-only disk: one line.
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(`cannot create identity file ${path} (${code}: ${(error as Error).message}); choose another path with --identity FILE or OCEANSTORE_IDENTITY`);
    }
    return identity;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ConfigError(`identity file ${path} is not readable JSON (${(error as Error).message}); move it away to make a new one`);
  }
  // `null`, a number or a list parse as JSON too.
  const secretKey = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as { secretKey?: unknown }).secretKey : undefined;
  if (typeof secretKey !== 'string' || !/^[0-9a-f]{64}$/.test(secretKey)) {
    throw new ConfigError(`identity file ${path} has no 64-hex-digit secretKey; move it away to make a new one`);
  }
  return identityFromSecret(fromHex(secretKey));
}
