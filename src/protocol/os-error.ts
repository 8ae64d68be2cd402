import { ErrorCode, RpcError } from './errors.js';

/**
 * The reference reports OS errors in Rust's std wording: the C library's strerror text followed by
 * `(os error N)`. Node only exposes libuv's lower-case wording, so the glibc texts of the errors a
 * file or process operation can produce are listed here.
 */
const GLIBC_TEXT: Readonly<Record<string, readonly [number, string]>> = {
  EPERM: [1, 'Operation not permitted'],
  ENOENT: [2, 'No such file or directory'],
  ESRCH: [3, 'No such process'],
  EINTR: [4, 'Interrupted system call'],
  EIO: [5, 'Input/output error'],
  ENXIO: [6, 'No such device or address'],
  E2BIG: [7, 'Argument list too long'],
  ENOEXEC: [8, 'Exec format error'],
  EBADF: [9, 'Bad file descriptor'],
  EAGAIN: [11, 'Resource temporarily unavailable'],
  ENOMEM: [12, 'Cannot allocate memory'],
  EACCES: [13, 'Permission denied'],
  EFAULT: [14, 'Bad address'],
  EBUSY: [16, 'Device or resource busy'],
  EEXIST: [17, 'File exists'],
  EXDEV: [18, 'Invalid cross-device link'],
  ENODEV: [19, 'No such device'],
  ENOTDIR: [20, 'Not a directory'],
  EISDIR: [21, 'Is a directory'],
  EINVAL: [22, 'Invalid argument'],
  ENFILE: [23, 'Too many open files in system'],
  EMFILE: [24, 'Too many open files'],
  ETXTBSY: [26, 'Text file busy'],
  EFBIG: [27, 'File too large'],
  ENOSPC: [28, 'No space left on device'],
  ESPIPE: [29, 'Illegal seek'],
  EROFS: [30, 'Read-only file system'],
  EMLINK: [31, 'Too many links'],
  EPIPE: [32, 'Broken pipe'],
  ENAMETOOLONG: [36, 'File name too long'],
  ENOTEMPTY: [39, 'Directory not empty'],
  ELOOP: [40, 'Too many levels of symbolic links'],
  EOPNOTSUPP: [95, 'Operation not supported'],
  ENOTSUP: [95, 'Operation not supported'],
  EDQUOT: [122, 'Disk quota exceeded'],
};

export interface SystemErrorLike {
  code?: unknown;
  errno?: unknown;
  message?: unknown;
}

/** Whether an error code has the reference's fixed text (and so a message that names no path). */
export function hasGlibcText(code: string): boolean {
  return Object.hasOwn(GLIBC_TEXT, code);
}

/** `No such file or directory (os error 2)` for an ENOENT, in the reference's words. */
export function osErrorMessage(err: SystemErrorLike): string {
  const code = typeof err.code === 'string' ? err.code : '';
  const known = GLIBC_TEXT[code];
  if (known) return `${known[1]} (os error ${known[0]})`;
  const errno = typeof err.errno === 'number' ? Math.abs(err.errno) : undefined;
  const text = typeof err.message === 'string' ? err.message : String(err);
  return errno === undefined ? text : `${text} (os error ${errno})`;
}

export function isSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}

/** Maps an OS error to the fs error codes of docs/protocol.md §10: not found, permission denied, other. */
export function fsErrorFromOs(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (!isSystemError(err)) return new RpcError(ErrorCode.Internal, err instanceof Error ? err.message : String(err));
  const message = osErrorMessage(err);
  if (err.code === 'ENOENT') return new RpcError(ErrorCode.NotFound, message);
  if (err.code === 'EACCES' || err.code === 'EPERM') return new RpcError(ErrorCode.InvalidRequest, message);
  return new RpcError(ErrorCode.Internal, message);
}

/**
 * Process start failures are -32603 with the OS text and (0.171) `data.kind`: `spawnNotFound` for a
 * missing program or cwd, `spawnPermissionDenied` for one that cannot be executed (a directory, no
 * x bit), `spawnFailed` otherwise. An RpcError passes through as it is.
 */
export function spawnErrorFromOs(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (!isSystemError(err))
    return new RpcError(ErrorCode.Internal, err instanceof Error ? err.message : String(err), { kind: 'spawnFailed' });
  const kind =
    err.code === 'ENOENT' ? 'spawnNotFound' : err.code === 'EACCES' || err.code === 'EPERM' ? 'spawnPermissionDenied' : 'spawnFailed';
  return new RpcError(ErrorCode.Internal, osErrorMessage(err), { kind });
}
