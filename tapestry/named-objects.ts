/**
 * Objects every server publishes about itself, so any process can find servers through the
 * overlay rather than the configuration: its name (locate finds that very node, wherever it sits
 * in the id space) and its role (locate finds the nearest server of that role, e.g. the nearest
 * archive server). Ids are H(tapestry-id tag ‖ kind ‖ 0 ‖ utf8 text), truncated like node ids;
 * node ids hash a 32-byte key, these hash a kind word first, so the two never meet by design.
 */
import { toHex } from '../core/bytes.ts';
import { HashTag, taggedHash } from '../core/crypto.ts';
import type { Crypto } from '../core/crypto.ts';
import { checkArgument } from '../core/errors.ts';
import { idBytes } from './id.ts';
import type { TapestryId } from './id.ts';

const utf8 = new TextEncoder();

function namedObjectId(crypto: Crypto, kind: string, text: string): TapestryId {
  checkArgument(typeof text === 'string' && text.length > 0 && text.length <= 256, kind, 'a non-empty string of at most 256 characters');
  return toHex(taggedHash(crypto, HashTag.tapestryId, utf8.encode(`${kind}\0${text}`)).subarray(0, idBytes));
}

/** The object a server publishes under its name: locating it finds that server. */
export function nodeObjectIdOf(crypto: Crypto, name: string): TapestryId {
  return namedObjectId(crypto, 'node', name);
}

/** The object every server of `role` publishes: locating it finds the nearest one. */
export function roleObjectIdOf(crypto: Crypto, role: string): TapestryId {
  return namedObjectId(crypto, 'role', role);
}
