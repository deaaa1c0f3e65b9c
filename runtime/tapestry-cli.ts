/**
 * `oceanstore locate`: find servers and objects through the Tapestry overlay, as an operator or a
 * script would (the lead wires it as a CLI verb; `run(args)` returns the exit code).
 *
 *   locate --role ROLE | --node NAME | --aguid HEX  [--via NODE|all] [--json] [--timeout-ms N] [--config FILE]
 *
 * --role finds the server of that role nearest to the asked node, --node finds that server,
 * --aguid finds a server holding the object (a secondary in its dissemination tree). --via picks
 * the node that runs the locate (default: the first node of the config); `all` asks every node.
 * Exit codes: 0 found (from every node asked), 1 not found or no answer, 2 usage.
 */
import { randomBytes } from 'node:crypto';
import { fromHex } from '../core/bytes.ts';
import { InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import { objectIdOf } from '../tapestry/id.ts';
import type { TapestryId } from '../tapestry/id.ts';
import { nodeObjectIdOf, roleObjectIdOf } from '../tapestry/named-objects.ts';
import { loadClusterConfig, roles } from './cluster-config.ts';
import { loadDescriptor } from './cluster-keys.ts';
import { nodeCrypto } from './node-crypto.ts';
import { TapestryClient, nodeHolderRule, roleHolderRule, type HolderRule, type LookupAnswer } from './tapestry-client.ts';
import type { PeerAddress } from './transport.ts';

export const locateUsage = `usage: oceanstore locate --role ROLE | --node NAME | --aguid HEX [--via NODE|all] [--json] [--timeout-ms N] [--config FILE]`;

const valueFlags = new Set(['--role', '--node', '--aguid', '--via', '--timeout-ms', '--config']);

interface LocateArgs {
  readonly what: string;
  readonly objectId: TapestryId;
  /** For --node and --role: who may hold the named object (checked against the descriptor in run). */
  readonly claim: { readonly node: string } | { readonly role: string } | undefined;
  readonly via: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly config: string;
}

/** Parses the arguments; InvalidArgumentError (a usage error) names what is wrong. */
export function parseLocateArgs(args: readonly string[]): LocateArgs {
  const values = new Map<string, string>();
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (valueFlags.has(a)) {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new InvalidArgumentError(`${a} needs a value`);
      values.set(a, v);
    } else throw new InvalidArgumentError(`unknown argument ${a}`);
  }
  const targets = ['--role', '--node', '--aguid'].filter((k) => values.has(k));
  if (targets.length !== 1) throw new InvalidArgumentError('give exactly one of --role, --node, --aguid');
  const key = targets[0]!;
  const value = values.get(key)!;
  let objectId: TapestryId;
  let claim: LocateArgs['claim'];
  if (key === '--role') {
    // Every node publishes its role; a name no node can have would only end in "not found".
    if (!(roles as readonly string[]).includes(value)) throw new InvalidArgumentError(`--role takes one of ${roles.join(', ')}, not '${value}'`);
    objectId = roleObjectIdOf(nodeCrypto, value);
    claim = { role: value };
  } else if (key === '--node') {
    objectId = nodeObjectIdOf(nodeCrypto, value);
    claim = { node: value };
  } else {
    if (!/^[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('--aguid wants 64 lowercase hex digits');
    objectId = objectIdOf(fromHex(value));
  }
  const timeoutMs = Number(values.get('--timeout-ms') ?? 10_000);
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw new InvalidArgumentError('--timeout-ms wants a positive integer');
  return {
    what: `${key.slice(2)} ${value}`, objectId, claim, via: values.get('--via') ?? '', json, timeoutMs,
    config: values.get('--config') ?? process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json',
  };
}

export async function run(args: string[], print: (line: string) => void = console.log): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    print(locateUsage);
    return 0;
  }
  let parsed: LocateArgs;
  try {
    parsed = parseLocateArgs(args);
  } catch (error) {
    if (!(error instanceof InvalidArgumentError)) throw error;
    console.error(`oceanstore locate: ${error.message}\n${locateUsage}`);
    return 2;
  }
  const config = loadClusterConfig(parsed.config);
  const descriptor = loadDescriptor(config, nodeCrypto);
  const members = new Map<string, PeerAddress>(descriptor.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }]));
  const vias = parsed.via === 'all' ? [...members.keys()] : [parsed.via || config.nodes[0]!.name];
  for (const via of vias) {
    if (!members.has(via)) {
      console.error(`oceanstore locate: --via ${via} is not a node of cluster ${config.name}`);
      return 2;
    }
  }
  const client = await TapestryClient.open({ secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members });
  try {
    const holder = holderRuleOf(parsed.claim, descriptor.nodes);
    const answers = await Promise.all(vias.map(async (via) => ({ via, answer: await lookupOrError(client, via, parsed, holder) })));
    if (parsed.json) {
      print(JSON.stringify({ what: parsed.what, objectId: parsed.objectId, answers: answers.map(({ via, answer }) => ({ via, ...answerJson(answer) })) }, null, 2));
    } else {
      for (const { via, answer } of answers) print(`${via} -> ${describe(answer)}`);
    }
    return answers.every(({ answer }) => !(answer instanceof Error) && answer.server !== null) ? 0 : 1;
  } finally {
    await client.stop();
  }
}

/**
 * Who may hold the named object: any member can publish another's name object or a role object
 * under its own signature, and was then reported as "node m1" or "the nearest archive server".
 */
export function holderRuleOf(claim: LocateArgs['claim'], nodes: readonly { readonly name: string; readonly role: string }[]): HolderRule | undefined {
  if (claim === undefined) return undefined;
  if ('node' in claim) return nodeHolderRule(claim.node);
  const roleOf = new Map(nodes.map((n) => [n.name, n.role]));
  return roleHolderRule(claim.role, (name) => roleOf.get(name));
}

async function lookupOrError(client: TapestryClient, via: string, parsed: LocateArgs, holder: HolderRule | undefined): Promise<LookupAnswer | Error> {
  try {
    return await client.lookup(via, parsed.objectId, parsed.timeoutMs, holder);
  } catch (error) {
    if (error instanceof OceanStoreError) return error;
    throw error;
  }
}

function describe(answer: LookupAnswer | Error): string {
  if (answer instanceof Error) return `no answer (${answer.message})`;
  if (!answer.answered) return 'no answer from the overlay in time';
  if (answer.server === null) return 'not found';
  return `${answer.server.name} (${answer.hops} hops, ${answer.latencyMs.toFixed(1)} ms)`;
}

function answerJson(answer: LookupAnswer | Error): Record<string, unknown> {
  if (answer instanceof Error) return { error: answer.message };
  return { server: answer.server?.name ?? null, hops: answer.hops, answered: answer.answered, latencyMs: Math.round(answer.latencyMs * 10) / 10 };
}
