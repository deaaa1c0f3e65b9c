/** What a secondary replica reports to its host (metrics, logs, simulation checkers). */
import type { Effect } from '../core/machine.ts';
import type { TreeMessage } from './messages.ts';

export type ReplicaEvent =
  | { readonly kind: 'accepted'; readonly aguid: string; readonly version: number; readonly vguid: string }
  | { readonly kind: 'rejected'; readonly aguid: string; readonly from: string; readonly reason: string }
  | { readonly kind: 'attached'; readonly aguid: string; readonly parent: string; readonly depth: number }
  | { readonly kind: 'detached'; readonly aguid: string; readonly parent: string; readonly reason: string };

export type ReplicaEffect = Effect<TreeMessage, ReplicaEvent>;
