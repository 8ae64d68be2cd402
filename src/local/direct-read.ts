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

/** How many symlinks an error's check follows before it leaves the answer to the worker. */
const MAX_LINKS_FOLLOWED = 8;
/** How many symlinks a route check reads (the kernel's own limit). */
const MAX_ROUTE_LINKS = 40;
/** Linux's PATH_MAX: a longer path fails at once, and is left to the worker. */
const PATH_MAX = 4096;

/** How many paths' verified objects are remembered (the oldest is forgotten first). */
const REMEMBERED_PATHS = 1024;

/**
 * Reads answered in the server for a sandbox whose policy permits every read (no deny entry, no
 * deny glob), with the answer an unsandboxed call gives, as reference 0.171 answers them: the
 * server's own credentials, root's capabilities included. What the check below guards is where the
 * object is, since a sandbox sees a few trees differently. The object is opened first and checked
 * through its descriptor, so a symlink swapped in between cannot redirect the read:
 *   - the descriptor's mount is one of this server's mount namespace, and the object's own path
 *     (the kernel's name for the descriptor) lies below that mount's mount point and outside what
 *     the sandbox replaces or hides (/proc, /dev, /sys, the server's private sandbox directory);
 *   - the path still names the same inode, so it is reachable from the root as the sandbox sees it
 *     (this rules out magic links such as /proc/PID/fd/N, and deleted files);
 *   - it is not a device node.
 * Anything else returns undefined and the caller asks the sandboxed worker.
 *
 * Why the mount check: /proc/PID/root (and /proc/PID/cwd) of a process in another mount namespace
 * (another sandbox, a service with a private /tmp, a container) leads into that namespace's tree,
 * which the sandbox cannot reach (its /proc is its own). The kernel names such an object by its
 * path inside that namespace, and a symlink in ours can make that same string reach it again (a
 * link `/x/d -> /proc/PID/root/x/d` where the other namespace has its own mount over /x): the name
 * and inode checks would pass. The name of an object reached in our own namespace never has a
 * symlink above it, so walking the name's directories would catch the link too, but not exactly:
 * a walk costs one lstat per level and a link swapped with a directory between the open and the
 * walk defeats it. The descriptor's mount id (fdinfo's `mnt_id`) is fixed at the open: three
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

  /**
   * The checks above for an open descriptor and its fstat. `requested`: the path it was opened
   * from; `followed`: whether a symlink as its last component was followed.
   */
  verify(fd: number, info: Stats, requested: string, followed: boolean): boolean {
    const type = info.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) return false;
    let where: string;
    try {
      where = readlinkSync(this.fdDir + fd);
    } catch {
      return false;
    }
    if (!where.startsWith('/') || !this.candidate(where) || !this.inOurNamespace(fd, where)) return false;
    // A name that is not the kernel's own name for the object reached it through a symlink, and a
    // link into /proc can lead out of it again to an object with an ordinary name (/proc/PID/cwd,
    // /exe, /fd/N): the route itself must stay where the sandbox sees what the host does.
    const direct = where === requested && requested === path.resolve(requested);
    if (!direct && !this.routeStaysVisible(requested, followed)) return false;
    // The lstat below resolves `where` again, its last component not followed. When the descriptor
    // was opened from that very string with O_NOFOLLOW, it is the same resolution the open just
    // made: it reaches the object the descriptor holds unless a directory on the way was swapped
    // in between (the answer is then the one the request would have had a moment sooner), so it
    // can refuse nothing here. A name the kernel marks as unlinked (" (deleted)") is checked anyway.
    if (!direct || followed || where.endsWith(' (deleted)')) {
      let again: Stats | undefined;
      try {
        again = lstatSync(where, { throwIfNoEntry: false });
      } catch {
        return false;
      }
      if (!again || again.ino !== info.ino || again.dev !== info.dev) return false;
    }
    return true;
  }

  /**
   * Resolves `p` as the kernel does, a name at a time, reading each symlink: false when a step
   * lands in a tree the sandbox replaces or hides, or the route cannot be read.
   */
  private routeStaysVisible(p: string, followLast: boolean): boolean {
    let names = p.split('/');
    let at = '/';
    let links = 0;
    while (names.length > 0) {
      const name = names.shift() as string;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        at = path.dirname(at);
        continue;
      }
      const next = at === '/' ? `/${name}` : `${at}/${name}`;
      if (!this.candidate(next)) return false;
      // The last name is not followed unless asked (a trailing slash leaves '' after it: followed).
      if (!followLast && names.length === 0) return true;
      let text: string;
      try {
        if (!lstatSync(next).isSymbolicLink()) {
          at = next;
          continue;
        }
        text = readlinkSync(next);
      } catch {
        return false;
      }
      if (++links > MAX_ROUTE_LINKS) return false;
      names = [...text.split('/'), ...names];
      if (text.startsWith('/')) at = '/';
    }
    return true;
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
    const link = this.pathInfo(p, O_PATH | O_NOFOLLOW);
    if (!link) return undefined;
    const target = (link.mode & S_IFMT) === S_IFLNK ? this.pathInfo(p, O_PATH) : link;
    if (!target) return undefined;
    if (this.verified.size >= REMEMBERED_PATHS) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(p, { link: seen(link), target: seen(target) });
    return { link, target };
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

  private pathInfo(p: string, flags: number): Stats | undefined {
    const fd = this.open(p, flags);
    if (fd === undefined) return undefined;
    try {
      const info = fstatSync(fd);
      return this.verify(fd, info, p, !(flags & O_NOFOLLOW)) ? info : undefined;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Opens `p` for reading, verified: the descriptor and its fstat, or undefined (ask the worker).
   * The object is opened for reading only once verified, through the verified descriptor (the
   * kernel reopens that very object, whatever is at `p` by then). The caller closes it.
   */
  openForReading(p: string): { fd: number; info: Stats } | undefined {
    const handle = this.open(p, O_PATH);
    if (handle === undefined) return undefined;
    try {
      const info = fstatSync(handle);
      if (!this.verify(handle, info, p, true)) return undefined;
      // The object's place is verified: the sandbox would meet the same error (EACCES, ENXIO).
      return { fd: openSync(this.fdDir + handle, O_RDONLY | O_NONBLOCK), info };
    } finally {
      closeSync(handle);
    }
  }

  /** Opens a directory for listing, verified (see openForReading). */
  openDirectory(p: string): number | undefined {
    // O_DIRECTORY refuses anything else before any driver is involved.
    const fd = this.open(p, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    if (fd === undefined) return undefined;
    try {
      const info = fstatSync(fd);
      if ((info.mode & S_IFMT) === S_IFDIR && this.verify(fd, info, p, true)) return fd;
    } catch {
      // fall through to the worker
    }
    closeSync(fd);
    return undefined;
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
        const dir = readlinkSync(path.dirname(p));
        if (!dir.startsWith('/')) return undefined;
        named = path.join(dir, path.basename(p));
      } catch {
        return undefined;
      }
    }
    let fd: number;
    try {
      fd = openSync(p, O_PATH);
    } catch {
      // Left out of the listing, as the sandbox leaves it, only when it is dangling there too.
      return this.sandboxError(named) ? 'missing' : undefined;
    }
    try {
      const info = fstatSync(fd);
      if (!this.verify(fd, info, named, true)) return undefined;
      const type = info.mode & S_IFMT;
      return { isDirectory: type === S_IFDIR, isFile: type === constants.S_IFREG };
    } finally {
      closeSync(fd);
    }
  }

  /** Opens `p`; undefined when it fails where the sandbox might not (ask the worker), else the sandbox's error. */
  private open(p: string, flags: number): number | undefined {
    try {
      return openSync(p, flags);
    } catch {
      const error = this.sandboxError(p);
      if (error) throw error;
      return undefined;
    }
  }

  /**
   * An open of `p` failed: the error the sandbox meets, when it can be told for certain, else
   * undefined (ask the worker). The longest part of `p` that exists is opened and verified like any
   * object (a symlink: the link, then what it leads to; a dangling one: its text with the rest of
   * `p`, as the kernel reads it), and the next name is looked up under that very descriptor
   * (/proc/PID/fd/N/name). That lookup's error is the answer: it depends only on a verified object,
   * so no link into /proc, swapped in or out meanwhile, can make an error tell what exists there
   * (a name under /proc/PID/fd/N answers "not a directory" where the sandbox says "no such file").
   */
  private sandboxError(p: string, linksFollowed = 0): Error | undefined {
    if (p.length >= PATH_MAX) return undefined;
    let at = p;
    let info: Stats | undefined;
    for (;;) {
      try {
        info = lstatSync(at, { throwIfNoEntry: false });
      } catch {
        info = undefined;
      }
      if (info) break;
      // `L/` follows the link L: the link itself is the next part to try, not its directory.
      const trimmed = at.replace(/\/+$/, '');
      const up = trimmed !== at && trimmed !== '' ? trimmed : path.dirname(at);
      if (up === at) return undefined;
      at = up;
    }
    const rest = p.slice(at.length);
    const isLink = (info.mode & S_IFMT) === S_IFLNK;
    if (isLink && !this.verifiedAt(at)) return undefined;
    let base: number;
    try {
      base = openSync(at, O_PATH);
    } catch {
      if (!isLink || linksFollowed >= MAX_LINKS_FOLLOWED) return undefined;
      let text: string;
      try {
        text = readlinkSync(at);
      } catch {
        return undefined;
      }
      return this.sandboxError(`${text.startsWith('/') ? '' : `${path.dirname(at)}/`}${text}${rest}`, linksFollowed + 1);
    }
    try {
      if (!this.verify(base, fstatSync(base), at, true)) return undefined;
      const next = rest.split('/').find((n) => n !== '');
      if (next === undefined || next === '.' || next === '..') return undefined;
      try {
        lstatSync(`${this.fdDir}${base}/${next}`);
      } catch (err) {
        return err as Error;
      }
      // It is there now: the open failed further on, or something changed; the worker answers.
      return undefined;
    } catch {
      return undefined;
    } finally {
      closeSync(base);
    }
  }

  /** Opens the symlink `at` itself and verifies it; false when either fails. */
  private verifiedAt(at: string): boolean {
    let fd: number;
    try {
      fd = openSync(at, O_PATH | O_NOFOLLOW);
    } catch {
      return false;
    }
    try {
      return this.verify(fd, fstatSync(fd), at, false);
    } catch {
      return false;
    } finally {
      closeSync(fd);
    }
  }
}
