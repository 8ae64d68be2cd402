import { randomUUID } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { access, constants, lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FsChange, FsChangeKind, FsChangeListener } from '../environment/types.js';
import { invalidRequest } from '../protocol/errors.js';
import { fsMessages } from '../protocol/messages.js';

interface Pending {
  renamed: boolean;
  changed: boolean;
}

interface Watch {
  id: string;
  root: string;
  rootIsDirectory: boolean;
  watcher: FSWatcher;
  pending: Map<string, Pending>;
  timer: NodeJS.Timeout | undefined;
}

export interface FsWatchLimits {
  maxWatches: number;
  /** Events of one watch are gathered this long, deduplicated per path, then reported. */
  coalesceMs: number;
  /** Distinct paths one watch holds between two reports; more are dropped. */
  maxPendingPaths: number;
}

const exists = (p: string): Promise<boolean> =>
  lstat(p).then(
    () => true,
    () => false,
  );

/**
 * The watches of one session (fs/watch), on inotify through fs.watch. inotify reports a rename as
 * two unrelated name events, so kinds are inferred per coalesced batch: when in one batch some path
 * vanished and another appeared, both sides are reported `renamed` (best effort: a delete and an
 * unrelated create within the same few milliseconds read as a rename too).
 */
export class FsWatches {
  private readonly watches = new Map<string, Watch>();
  private readonly listeners = new Set<FsChangeListener>();
  /** Watches being set up: they hold a slot before their awaits, so concurrent calls cannot pass the limit. */
  private starting = 0;

  constructor(private readonly limits: FsWatchLimits) {}

  subscribe(listener: FsChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async watch(root: string, recursive: boolean): Promise<string> {
    if (this.watches.size + this.starting >= this.limits.maxWatches)
      throw invalidRequest(fsMessages.tooManyWatches(this.limits.maxWatches));
    this.starting++;
    let info;
    try {
      info = await stat(root);
      await access(root, constants.R_OK); // a watch must not reveal what the caller may not read
    } finally {
      this.starting--;
    }
    const id = randomUUID();
    const watcher = watch(root, { recursive: recursive && info.isDirectory(), persistent: false });
    const w: Watch = { id, root, rootIsDirectory: info.isDirectory(), watcher, pending: new Map(), timer: undefined };
    watcher.on('change', (eventType, filename) => this.record(w, eventType, filename));
    watcher.on('error', () => void this.unwatch(id).catch(() => undefined));
    this.watches.set(id, w);
    return id;
  }

  private record(w: Watch, eventType: string, filename: string | Buffer | null): void {
    const name = filename === null ? '' : filename.toString();
    const full = w.rootIsDirectory && name !== '' ? path.join(w.root, name) : w.root;
    let entry = w.pending.get(full);
    if (!entry) {
      if (w.pending.size >= this.limits.maxPendingPaths) return;
      entry = { renamed: false, changed: false };
      w.pending.set(full, entry);
    }
    if (eventType === 'rename') entry.renamed = true;
    else entry.changed = true;
    w.timer ??= setTimeout(() => void this.flush(w), this.limits.coalesceMs);
  }

  private async flush(w: Watch): Promise<void> {
    w.timer = undefined;
    const batch = [...w.pending.entries()];
    w.pending.clear();
    const present = await Promise.all(batch.map(([p]) => exists(p)));
    const vanished = batch.filter(([, e], i) => e.renamed && !present[i]);
    const appeared = batch.filter(([, e], i) => e.renamed && present[i]);
    const isRename = vanished.length > 0 && appeared.length > 0;
    const changes: FsChange[] = [];
    batch.forEach(([p, e], i) => {
      let kind: FsChangeKind;
      if (!present[i]) kind = isRename && e.renamed ? 'renamed' : 'removed';
      else if (e.renamed) kind = isRename ? 'renamed' : 'created';
      else kind = 'modified';
      changes.push({ watchId: w.id, path: p, kind });
    });
    if (!this.watches.has(w.id)) return;
    for (const change of changes) for (const l of this.listeners) l(change);
  }

  async unwatch(id: string): Promise<void> {
    const w = this.watches.get(id);
    if (!w) throw invalidRequest(fsMessages.unknownWatch(id));
    this.watches.delete(id);
    clearTimeout(w.timer);
    w.watcher.close();
  }

  closeAll(): void {
    for (const id of [...this.watches.keys()]) void this.unwatch(id);
  }
}
