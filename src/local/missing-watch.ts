import { type FSWatcher, watch } from 'node:fs';
import { lstat } from 'node:fs/promises';
import path from 'node:path';

/** Paths one fs/watchMissing may list (the reference answers `watching:false` above 64 too). */
export const MAX_MISSING_PATHS = 64;

interface Active {
  watchId: number;
  watchers: FSWatcher[];
}

type Found = { exists: true; isDirectory: boolean } | { exists: false };

const probe = (p: string): Promise<Found> =>
  lstat(p).then(
    (s) => ({ exists: true, isDirectory: s.isDirectory() }),
    () => ({ exists: false }),
  );

/**
 * Where to wait for a missing path: its deepest existing ancestor and the name that must appear
 * there. Undefined when the path exists already or an ancestor is not a directory (it cannot appear).
 */
async function waitPoint(missing: string): Promise<{ dir: string; name: string } | undefined> {
  let child = path.resolve(missing);
  if ((await probe(child)).exists) return undefined;
  for (;;) {
    const parent = path.dirname(child);
    if (parent === child) return undefined;
    const found = await probe(parent);
    if (found.exists) return found.isDirectory ? { dir: parent, name: path.basename(child) } : undefined;
    child = parent;
  }
}

/**
 * The one missing-path watch of a session (fs/watchMissing). Each watched name is followed through
 * an inotify watch on the directory that holds it (fs.watch, not recursive), so a new file elsewhere
 * in that directory, or inside a `present` directory, does not fire. One-shot: the first relevant
 * event reports the watchId and drops every inotify watch. A missing path whose ancestors are missing
 * fires as soon as the first of them appears (the client then looks again).
 */
export class MissingWatch {
  /** The highest watchId registered, accepted or not: a registration must go above it. */
  private lastId = -1;
  private active: Active | undefined;
  private readonly listeners = new Set<(watchId: number) => void>();

  subscribe(listener: (watchId: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async watch(watchId: number, missing: string[], present: string | null): Promise<boolean> {
    if (watchId <= this.lastId) return false;
    this.lastId = watchId;
    this.stop();
    if (missing.length === 0 || missing.length > MAX_MISSING_PATHS) return false;
    const names = new Map<string, Set<string>>();
    const add = (dir: string, name: string): void => {
      let set = names.get(dir);
      if (!set) names.set(dir, (set = new Set()));
      set.add(name);
    };
    for (const m of missing) {
      const point = await waitPoint(m);
      if (!point) return false;
      add(point.dir, point.name);
    }
    if (present !== null) {
      const resolved = path.resolve(present);
      if (!(await probe(resolved)).exists || path.dirname(resolved) === resolved) return false;
      add(path.dirname(resolved), path.basename(resolved));
    }
    if (watchId !== this.lastId) return false; // a later registration came in while this one looked
    const active: Active = { watchId, watchers: [] };
    this.active = active;
    try {
      for (const [dir, wanted] of names) {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          if (filename === null || wanted.has(filename.toString())) this.fire(active);
        });
        watcher.on('error', () => this.fire(active));
        active.watchers.push(watcher);
      }
    } catch {
      this.stop();
      return false;
    }
    // What appeared between the checks above and the watches being in place would go unnoticed.
    void Promise.all(missing.map(waitPoint)).then((points) => {
      if (points.some((p) => !p || names.get(p.dir)?.has(p.name) !== true)) this.fire(active);
    });
    return true;
  }

  private fire(active: Active): void {
    if (this.active !== active) return;
    this.stop();
    for (const l of this.listeners) l(active.watchId);
  }

  private stop(): void {
    const active = this.active;
    this.active = undefined;
    for (const w of active?.watchers ?? []) w.close();
  }

  close(): void {
    this.stop();
    this.listeners.clear();
  }
}
