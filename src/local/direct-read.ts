import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';

const { S_IFMT, S_IFCHR, S_IFBLK, S_IFDIR, S_IFLNK, O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_DIRECTORY } = constants;
/** Linux's O_PATH (the same on x86_64 and aarch64); Node does not export it. */
const O_PATH = 0o10000000;

/**
 * Trees a sandbox does not show as the host has them: bubblewrap mounts a fresh /proc (its own PID
 * namespace) and a minimal /dev, and device nodes are unusable elsewhere (nodev binds). /sys is the
 * host's inside too, but some of its files check capabilities on read, so it is left to the worker.
 */
const SANDBOX_OWN_TREES = ['/proc', '/dev', '/sys'];

const within = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);

function ownProcDir(): string {
  try {
    if (readlinkSync('/proc/self') === String(process.pid)) return `/proc/${process.pid}/`;
  } catch {
    // no /proc: every check fails its readlink and goes to the worker
  }
  return '/proc/self/';
}

/** A mount point as /proc/PID/mountinfo writes it: space, tab, newline and backslash in octal. */
const unescapeMountPoint = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));

/** The mounts of this process's mount namespace: mount id -> mount point. Empty when unreadable. */
function readMounts(procDir: string): Map<number, string> {
  const mounts = new Map<number, string>();
  let text: string;
  try {
    text = readFileSync(`${procDir}mountinfo`, 'utf8');
  } catch {
    return mounts;
  }
  for (const line of text.split('\n')) {
    // "ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS ..."
    const f = line.split(' ', 5);
    if (f.length === 5) mounts.set(Number(f[0]), unescapeMountPoint(f[4] as string));
  }
  return mounts;
}

/**
 * What a verified stat saw: the object (device, inode, ctime) and every value a metadata answer
 * gives (kind, size, times). A later stat with the same values gives the same answer.
 */
interface Seen {
  dev: number;
  ino: number;
  ctimeMs: number;
  type: number;
  size: number;
  mtimeMs: number;
  birthtimeMs: number;
}

const seen = (s: Stats): Seen => ({
  dev: s.dev,
  ino: s.ino,
  ctimeMs: s.ctimeMs,
  type: s.mode & S_IFMT,
  size: s.size,
  mtimeMs: s.mtimeMs,
  birthtimeMs: s.birthtimeMs,
});
const sameAnswer = (s: Stats, k: Seen): boolean =>
  s.ino === k.ino &&
  s.dev === k.dev &&
  s.ctimeMs === k.ctimeMs &&
  (s.mode & S_IFMT) === k.type &&
  s.size === k.size &&
  s.mtimeMs === k.mtimeMs &&
  s.birthtimeMs === k.birthtimeMs;

/** How many symlinks the server follows itself (a link as the last name) before it leaves the answer to the worker. */
const MAX_LINKS_FOLLOWED = 8;
/** Linux's PATH_MAX: a longer path fails at once, and is left to the worker. */
const PATH_MAX = 4096;

/**
 * The path a symlink at `link` (a path without links or dots) names with `text`, as the kernel reads
 * it: a relative text from the link's directory, leading `..` climbing from there. Undefined when a
 * `..` follows a name (the kernel climbs from wherever that name leads, maybe a link).
 */
function linkTargetPath(link: string, text: string): string | undefined {
  if (text === '') return undefined;
  let at = text.startsWith('/') ? '/' : path.dirname(link);
  let named = false;
  for (const name of text.split('/')) {
    if (name === '') continue;
    // `f/.` wants f to be a directory: the worker's to answer.
    if (name === '.') {
      if (named) return undefined;
      continue;
    }
    if (name === '..') {
      if (named) return undefined;
      at = path.dirname(at);
      continue;
    }
    named = true;
    at = at === '/' ? `/${name}` : `${at}/${name}`;
  }
  return text.endsWith('/') && at !== '/' ? `${at}/` : at;
}

/** How many paths' verified objects are remembered (the oldest is forgotten first). */
const REMEMBERED_PATHS = 1024;

/**
 * Reads answered in the server for a sandbox whose policy permits every read (no deny entry, no
 * deny glob), with the answer an unsandboxed call gives, as reference 0.171 answers them: the
 * server's own credentials, root's capabilities included. What the check below guards is where the
 * object is, since a sandbox sees a few trees differently. The path is walked from the root a
 * name at a time through descriptors (see reach), so nothing swapped in meanwhile is read:
 *   - no symlink on the way (a link as the last name is followed here, a link at a time, each
 *     target walked the same way), which rules out magic links such as /proc/PID/cwd or /fd/N;
 *   - every name on the way lies outside what the sandbox replaces or hides (/proc, /dev, /sys, the
 *     server's private sandbox directory), and the object's mount is one of this server's mount
 *     namespace, its mount point above the name;
 *   - it is not a device node. Files are opened for reading only then, through the descriptor.
 * Anything else returns undefined and the caller asks the sandboxed worker. A lookup that fails on
 * the way fails under a verified directory, as in the sandbox: its error is the answer.
 *
 * Why the mount check: /proc/PID/root (and /proc/PID/cwd) of a process in another mount namespace
 * (another sandbox, a service with a private /tmp, a container) leads into that namespace's tree,
 * which the sandbox cannot reach (its /proc is its own). The kernel names such an object by its
 * path inside that namespace, and a symlink in ours can make that same string reach it again (a
 * link `/x/d -> /proc/PID/root/x/d` where the other namespace has its own mount over /x). The
 * walk never enters /proc, so this is a second guard. The descriptor's mount id (fdinfo's `mnt_id`) is fixed at the open: three
 * system calls whatever the depth, and it also catches an object another namespace reaches by a
 * bind mount with no symlink on the way. Mount ids are compared with our namespace's
 * /proc/PID/mountinfo, kept and read again whenever an id is unknown or its mount point does not
 * lead to the name (an id freed by an unmount here and reused by another namespace's mount).
 *
 * Metadata of a path asked again (a client polls the same few paths) is answered by the stat alone
 * when that stat finds the object verified last time for that path with every value of the answer
 * unchanged (device, inode, ctime, kind, size, modification and birth times). The answer is then
 * the one already given for a verified object, whatever way the path takes now, so nothing the
 * sandbox hides is learned from it. (Device, inode and ctime alone are not enough: a freed inode
 * number is reused at once on ext4, and ctime can be as coarse as a second, so another file,
 * somewhere hidden, could match them.) Anything else is verified again.
 */
export class DirectReads {
  /**
   * `/proc/PID/`: naming the process spares the kernel resolving the `/proc/self` link at every
   * check. Only when /proc belongs to this process's PID namespace (`/proc/self` names our pid): a
   * server started in a new PID namespace without its own /proc would read another process's table.
   */
  private readonly procDir = ownProcDir();
  private readonly fdDir = `${this.procDir}fd/`;
  private readonly fdinfoDir = `${this.procDir}fdinfo/`;
  /** The start of a descriptor's fdinfo ("pos:", "flags:", "mnt_id:" come first). */
  private readonly fdinfo = Buffer.alloc(256);
  /** Our namespace's mounts (id -> mount point), read again when a descriptor's mount is not found. */
  private mounts = new Map<number, string>();
  /** Per path asked for metadata, the objects (lstat's, and stat's for a symlink) verified there last. */
  private readonly verified = new Map<string, { link: Seen; target: Seen }>();

  constructor(
    /** Paths each sandbox hides (the server's private sandbox directory, once it exists). */
    private readonly hidden: () => readonly string[],
  ) {}

  /** Whether a path can be tried here at all (its lexical form is not in a tree the sandbox replaces). */
  candidate(p: string): boolean {
    return process.platform === 'linux' && !SANDBOX_OWN_TREES.some((t) => within(p, t)) && !this.hidden().some((h) => within(p, h));
  }

  /** The checks above for the descriptor a walk reached at `where`, and its fstat. */
  verify(fd: number, info: Stats, where: string): boolean {
    const type = info.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) return false;
    return this.candidate(where) && this.inOurNamespace(fd, where);
  }

  /** Whether the descriptor's mount belongs to our mount namespace, its mount point above `where`. */
  private inOurNamespace(fd: number, where: string): boolean {
    const id = this.mountId(fd);
    if (id === undefined) return false;
    const holds = (point: string | undefined): boolean => point !== undefined && (point === '/' || within(where, point));
    if (holds(this.mounts.get(id))) return true;
    this.mounts = readMounts(this.procDir);
    return holds(this.mounts.get(id));
  }

  private mountId(fd: number): number | undefined {
    let info: number;
    try {
      info = openSync(this.fdinfoDir + fd, O_RDONLY);
    } catch {
      return undefined;
    }
    let text: string;
    try {
      text = this.fdinfo.toString('latin1', 0, readSync(info, this.fdinfo, 0, this.fdinfo.length, 0));
    } catch {
      return undefined;
    } finally {
      closeSync(info);
    }
    const at = text.indexOf('\nmnt_id:\t');
    if (at < 0) return undefined;
    const id = Number.parseInt(text.slice(at + 9), 10);
    return Number.isNaN(id) ? undefined : id;
  }

  /** lstat and, for a symlink, stat of `p`, verified; undefined: ask the worker. Throws the OS error the sandbox would meet. */
  metadata(p: string): { link: Stats; target: Stats } | undefined {
    const again = this.seenBefore(p);
    if (again) return again;
    const link = this.reach(p, false);
    if (!link) return undefined;
    closeSync(link.fd);
    let target = link;
    if ((link.info.mode & S_IFMT) === S_IFLNK) {
      const followed = this.reach(p, true);
      if (!followed) return undefined;
      closeSync(followed.fd);
      target = followed;
    }
    if (this.verified.size >= REMEMBERED_PATHS) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(p, { link: seen(link.info), target: seen(target.info) });
    return { link: link.info, target: target.info };
  }

  /** The stats of `p` when they find the objects verified there before, else undefined (and `p` is forgotten). */
  private seenBefore(p: string): { link: Stats; target: Stats } | undefined {
    const known = this.verified.get(p);
    if (!known) return undefined;
    try {
      const link = lstatSync(p, { throwIfNoEntry: false });
      if (link && sameAnswer(link, known.link)) {
        if ((link.mode & S_IFMT) !== S_IFLNK) return { link, target: link };
        const target = statSync(p, { throwIfNoEntry: false });
        if (target && sameAnswer(target, known.target)) return { link, target };
      }
    } catch {
      // an error is the verified path's to give
    }
    this.verified.delete(p);
    return undefined;
  }

  /**
   * An O_PATH descriptor of `p` and its fstat, verified (the caller closes it); undefined: ask the
   * worker; throws the error the sandbox meets. `p` is walked from the root a name at a time, each
   * opened with O_NOFOLLOW under the descriptor of the directory before it (/proc/PID/fd/N/name):
   * no name is read twice, so no link swapped in meanwhile can redirect the route, and a lookup
   * that fails, failing under a verified directory, fails as it does in the sandbox. A symlink
   * before the last name, or `.`/`..`, goes to the worker. With `follow`, a symlink as the last name
   * (or a trailing slash) is followed here, a link at a time: its text, read under its directory's
   * descriptor, is joined to that directory, and the target is walked the same way.
   */
  private reach(p: string, follow: boolean, links = 0): { fd: number; info: Stats } | undefined {
    if (!p.startsWith('/') || p.includes('\0') || Buffer.byteLength(p) >= PATH_MAX) return undefined;
    const names = p.split('/').filter((n) => n !== '');
    if (names.some((n) => n === '.' || n === '..')) return undefined;
    const directory = p.length > 1 && p.endsWith('/');
    if (directory) follow = true;
    let dir = openSync('/', O_PATH | O_DIRECTORY);
    let at = '/';
    try {
      for (let i = 0; i < names.length; i++) {
        const name = names[i] as string;
        const next = at === '/' ? `/${name}` : `${at}/${name}`;
        if (!this.candidate(next)) return undefined;
        const last = i === names.length - 1;
        let fd: number;
        try {
          fd = openSync(`${this.fdDir}${dir}/${name}`, O_PATH | O_NOFOLLOW | (last ? 0 : O_DIRECTORY));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ELOOP' || code === 'ENAMETOOLONG') return undefined;
          // ENOTDIR on the way: a link there (the sandbox follows it) is the worker's to resolve.
          if (code === 'ENOTDIR' && !last) {
            try {
              if (lstatSync(`${this.fdDir}${dir}/${name}`).isSymbolicLink()) return undefined;
            } catch {
              return undefined;
            }
          }
          throw err;
        }
        if (!last) {
          closeSync(dir);
          dir = fd;
          at = next;
          continue;
        }
        let kept = false;
        try {
          const info = fstatSync(fd);
          if (follow && (info.mode & S_IFMT) === S_IFLNK) {
            if (links >= MAX_LINKS_FOLLOWED) return undefined;
            const text = readlinkSync(`${this.fdDir}${dir}/${name}`, { encoding: 'buffer' });
            if (!isUtf8(text)) return undefined;
            const target = linkTargetPath(next, text.toString());
            if (target === undefined) return undefined;
            return this.reach(directory && !target.endsWith('/') ? `${target}/` : target, true, links + 1);
          }
          if (directory && (info.mode & S_IFMT) !== S_IFDIR) return undefined;
          if (!this.verify(fd, info, next)) return undefined;
          kept = true;
          return { fd, info };
        } finally {
          if (!kept) closeSync(fd);
        }
      }
      // The root itself.
      const info = fstatSync(dir);
      if (!this.verify(dir, info, '/')) return undefined;
      const root = dir;
      dir = -1;
      return { fd: root, info };
    } finally {
      if (dir >= 0) closeSync(dir);
    }
  }

  /**
   * Opens `p` for reading, verified: the descriptor and its fstat, or undefined (ask the worker).
   * The object is opened for reading only once verified, through the verified descriptor (the
   * kernel reopens that very object, whatever is at `p` by then). The caller closes it.
   */
  openForReading(p: string): { fd: number; info: Stats } | undefined {
    const reached = this.reach(p, true);
    if (!reached) return undefined;
    try {
      // The object is verified: the sandbox would meet the same error (EACCES, ENXIO).
      return { fd: openSync(this.fdDir + reached.fd, O_RDONLY | O_NONBLOCK), info: reached.info };
    } finally {
      closeSync(reached.fd);
    }
  }

  /** Opens a directory for listing, verified (see openForReading); a verified non-directory: ENOTDIR. */
  openDirectory(p: string): number | undefined {
    const reached = this.reach(p, true);
    if (!reached) return undefined;
    try {
      return openSync(this.fdDir + reached.fd, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    } finally {
      closeSync(reached.fd);
    }
  }

  /**
   * What a directory listing reports for the symlink `p`: its target's kind, 'missing' when broken,
   * undefined: ask the worker. A listing names its links through the directory's descriptor
   * (/proc/PID/fd/N/name); the checks start from the directory's own name.
   */
  linkTarget(p: string): { isDirectory: boolean; isFile: boolean } | 'missing' | undefined {
    let named = p;
    if (p.startsWith('/proc/self/fd/') || p.startsWith(this.fdDir)) {
      try {
        const dir = readlinkSync(path.dirname(p), { encoding: 'buffer' });
        if (!isUtf8(dir) || dir[0] !== 0x2f) return undefined;
        named = path.join(dir.toString(), path.basename(p));
      } catch {
        return undefined;
      }
    }
    let reached: { fd: number; info: Stats } | undefined;
    try {
      reached = this.reach(named, true);
    } catch {
      // Left out of the listing, as the sandbox leaves it: dangling there too.
      return 'missing';
    }
    if (!reached) return undefined;
    closeSync(reached.fd);
    const type = reached.info.mode & S_IFMT;
    return { isDirectory: type === S_IFDIR, isFile: type === constants.S_IFREG };
  }
}
