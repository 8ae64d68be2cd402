import type { Stream } from '../environment/types.js';
import type { ChildSpec } from './child.js';

/** What the server's main thread asks of the terminal thread, per child `id`. */
export type ToPtyThread =
  | { type: 'spawn'; id: number; spec: ChildSpec }
  | { type: 'write'; id: number; data: Uint8Array }
  | { type: 'endStdin' | 'interrupt' | 'pause' | 'resume'; id: number }
  | { type: 'resize'; id: number; rows: number; cols: number };

/** What the terminal thread reports, in the order it happened for each child. */
export type FromPtyThread =
  | { type: 'spawned'; id: number; pid: number }
  | { type: 'spawnFailed'; id: number; message: string; code?: string; errno?: number; syscall?: string; path?: string }
  | { type: 'output'; id: number; stream: Stream; data: Uint8Array }
  | { type: 'exited'; id: number; exitCode: number }
  | { type: 'closed'; id: number };
