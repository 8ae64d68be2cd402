import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, type Stats } from 'node:fs';
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

/** Whether this process holds any effective capability (root, usually): the sandbox drops them all. */
export function holdsCapabilities(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) !== 0n : true;
  } catch {
    return true;
  }
}

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
 * Reads answered in the server for a sandbox whose policy permits every read, with the sandbox's
 * answer. The object is opened first and checked through its descriptor, so a symlink swapped in
 * between cannot redirect the read:
 *   - the descriptor's mount is one of this server's mount namespace, and the object's own path
 *     (the kernel's name for the descriptor) lies below that mount's mount point and outside what
 *     the sandbox replaces or hides (/proc, /dev, /sys, the server's private sandbox directory);
 *   - the path still names the same inode, so it is reachable from the root as the sandbox sees it
 *     (this rules out magic links such as /proc/PID/fd/N, and deleted files);
 *   - it is not a device node;
 *   - when the server holds capabilities (root), which the sandbox drops: the object and each
 *     directory above it are owned by this user and grant it the access by their owner bits.
 * Anything else returns undefined and the caller asks the sandboxed worker, which is always right.
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
 */
export class DirectReads {
  private readonly euid: number;
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

  constructor(
    /** Paths each sandbox hides (the server's private sandbox directory, once it exists). */
    private readonly hidden: () => readonly string[],
    /** The server holds capabilities the sandbox would drop. */
    readonly privileged: boolean,
  ) {
    this.euid = process.geteuid?.() ?? -1;
  }

  /** Whether a path can be tried here at all (its lexical form is not in a tree the sandbox replaces). */
  candidate(p: string): boolean {
    return process.platform === 'linux' && !SANDBOX_OWN_TREES.some((t) => within(p, t)) && !this.hidden().some((h) => within(p, h));
  }

  /** Errors of a direct attempt stand for the sandbox's only when credentials are the same. */
  get errorsAreFinal(): boolean {
    return !this.privileged;
  }

  /**
   * The checks above for an open descriptor and its fstat; `access` is the permission the operation
   * needs on the object. `unfollowed`: the path the descriptor was opened from with O_NOFOLLOW.
   */
  verify(fd: number, info: Stats, access: 'none' | 'read' | 'list', unfollowed?: string): boolean {
    const type = info.mode & S_IFMT;
    if (type === S_IFCHR || type === S_IFBLK) return false;
    let where: string;
    try {
      where = readlinkSync(this.fdDir + fd);
    } catch {
      return false;
    }
    if (!where.startsWith('/') || !this.candidate(where) || !this.inOurNamespace(fd, where)) return false;
    // The lstat below resolves `where` again, its last component not followed. When the descriptor
    // was opened from that very string with O_NOFOLLOW, it is the same resolution the open just
    // made: it reaches the object the descriptor holds unless a directory on the way was swapped
    // in between (the answer is then the one the request would have had a moment sooner), so it
    // can refuse nothing here. A name the kernel marks as unlinked (" (deleted)") is checked anyway.
    if (where !== unfollowed || where.endsWith(' (deleted)')) {
      const again = lstatSync(where, { throwIfNoEntry: false });
      if (!again || again.ino !== info.ino || again.dev !== info.dev) return false;
    }
    if (!this.privileged) return true;
    if (access !== 'none' && !this.ownerMay(info, access === 'read' ? 0o400 : 0o500)) return false;
    // Each level must be a directory (not a symlink, which the kernel's name never holds): free here,
    // and a second guard against a name from another namespace next to the mount check.
    for (let dir = path.dirname(where); ; dir = path.dirname(dir)) {
      const d = lstatSync(dir, { throwIfNoEntry: false });
      if (!d || (d.mode & S_IFMT) !== S_IFDIR || !this.ownerMay(d, 0o100)) return false;
      if (dir === '/') return true;
    }
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

  private ownerMay(info: Stats, bits: number): boolean {
    return info.uid === this.euid && (info.mode & bits) === bits;
  }

  /**
   * lstat and, for a symlink, stat of `p`, verified; undefined: ask the worker. Throws the OS error
   * when errors are final (the same credentials would meet the same error in the sandbox).
   */
  metadata(p: string): { link: Stats; target: Stats } | undefined {
    const link = this.pathInfo(p, O_PATH | O_NOFOLLOW);
    if (!link) return undefined;
    if ((link.mode & S_IFMT) !== S_IFLNK) return { link, target: link };
    const target = this.pathInfo(p, O_PATH);
    return target ? { link, target } : undefined;
  }

  private pathInfo(p: string, flags: number): Stats | undefined {
    const fd = this.open(p, flags);
    if (fd === undefined) return undefined;
    try {
      const info = fstatSync(fd);
      return this.verify(fd, info, 'none', flags & O_NOFOLLOW ? p : undefined) ? info : undefined;
    } finally {
      closeSync(fd);
    }
  }

  /** Opens `p` for reading, verified: the descriptor and its fstat, or undefined (ask the worker). The caller closes it. */
  openForReading(p: string): { fd: number; info: Stats } | undefined {
    const fd = this.open(p, O_RDONLY | O_NONBLOCK);
    if (fd === undefined) return undefined;
    try {
      const info = fstatSync(fd);
      if (this.verify(fd, info, 'read')) return { fd, info };
    } catch {
      // fall through to the worker
    }
    closeSync(fd);
    return undefined;
  }

  /** Opens a directory for listing, verified (see openForReading). */
  openDirectory(p: string): number | undefined {
    const fd = this.open(p, O_RDONLY | O_DIRECTORY | O_NONBLOCK);
    if (fd === undefined) return undefined;
    try {
      const info = fstatSync(fd);
      if ((info.mode & S_IFMT) === S_IFDIR && this.verify(fd, info, 'list')) return fd;
    } catch {
      // fall through to the worker
    }
    closeSync(fd);
    return undefined;
  }

  /** What a directory listing reports for the symlink `p`: its target's kind, 'missing' when broken, undefined: ask the worker. */
  linkTarget(p: string): { isDirectory: boolean; isFile: boolean } | 'missing' | undefined {
    let fd: number;
    try {
      fd = openSync(p, O_PATH);
    } catch {
      return this.errorsAreFinal ? 'missing' : undefined;
    }
    try {
      const info = fstatSync(fd);
      if (!this.verify(fd, info, 'none')) return undefined;
      const type = info.mode & S_IFMT;
      return { isDirectory: type === S_IFDIR, isFile: type === constants.S_IFREG };
    } finally {
      closeSync(fd);
    }
  }

  private open(p: string, flags: number): number | undefined {
    try {
      return openSync(p, flags);
    } catch (err) {
      if (this.errorsAreFinal || this.missingForTheSandboxToo(p, err)) throw err;
      return undefined;
    }
  }

  /**
   * With capabilities, a missing name is missing for the sandbox too when the nearest directory
   * above it that exists is one the sandbox could search (the probes of absent files a client makes
   * all the time, such as `.agents/skills` in a project without `.agents`). The names in between
   * are missing on the host; the sandbox adds nothing under a missing name but an empty mask.
   */
  private missingForTheSandboxToo(p: string, err: unknown): boolean {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || lstatSync(p, { throwIfNoEntry: false })) return false;
    let fd: number;
    try {
      let dir = path.dirname(p);
      while (dir !== '/' && !lstatSync(dir, { throwIfNoEntry: false })) dir = path.dirname(dir);
      fd = openSync(dir, O_PATH | O_DIRECTORY);
    } catch {
      return false;
    }
    try {
      const info = fstatSync(fd);
      return this.verify(fd, info, 'none') && this.ownerMay(info, 0o100);
    } finally {
      closeSync(fd);
    }
  }
}
