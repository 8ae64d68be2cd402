import { accessSync, closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';

const DEFAULT_SEARCH_PATH = '/bin:/usr/bin';

function sysError(code: string, errno: number, syscall: string, file: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: ${syscall} ${file}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = -errno;
  err.syscall = syscall;
  err.path = file;
  return err;
}

// These checks are a few microseconds of local syscalls each, made right before spawn (which itself
// forks and execs synchronously); doing them synchronously saves a thread-pool round trip apiece,
// several per process start.
function checkExecutable(file: string): void {
  const info = statSync(file);
  // execve refuses anything but a regular file with EACCES; checking it here also keeps the
  // format check below from opening a FIFO or a device, whose open or read could block the server.
  if (!info.isFile()) throw sysError('EACCES', 13, 'execve', file);
  accessSync(file, constants.X_OK);
}

/**
 * execvp (which libuv uses) runs a file the kernel refuses with ENOEXEC through /bin/sh instead of
 * failing. The reference reports `Exec format error`, so a file that is neither ELF nor a `#!` script
 * is refused up front, as execve would.
 */
export async function checkExecFormat(file: string): Promise<void> {
  // Non-blocking, and refused unless regular: the file may have been swapped for a FIFO since it was checked.
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw sysError('EACCES', 13, 'execve', file);
    const buffer = Buffer.alloc(4);
    const bytesRead = readSync(fd, buffer, 0, 4, 0);
    const head = buffer.subarray(0, bytesRead);
    const isElf = bytesRead === 4 && head[0] === 0x7f && head.subarray(1, 4).toString('latin1') === 'ELF';
    const isScript = bytesRead >= 2 && head[0] === 0x23 && head[1] === 0x21;
    if (!isElf && !isScript) throw sysError('ENOEXEC', 8, 'execve', file);
  } finally {
    closeSync(fd);
  }
}

/** The child's working directory must exist and be a directory (ENOENT / ENOTDIR otherwise). */
export async function checkWorkingDirectory(cwd: string): Promise<void> {
  const info = statSync(cwd);
  if (!info.isDirectory()) throw sysError('ENOTDIR', 20, 'chdir', cwd);
}

/**
 * Finds the file execvp would run for `command` with the child's PATH, with execvp's errors:
 * a name with a slash is taken relative to `cwd`; otherwise each PATH entry is tried, and when none
 * works the error is EACCES if some entry was refused, else ENOENT.
 */
export async function resolveExecutable(command: string, searchPath: string | undefined, cwd: string): Promise<string> {
  if (command === '') throw sysError('ENOENT', 2, 'execve', command);
  if (command.includes('/')) {
    const file = path.resolve(cwd, command);
    checkExecutable(file);
    return file;
  }
  let sawAccessError: NodeJS.ErrnoException | undefined;
  for (const dir of (searchPath ?? DEFAULT_SEARCH_PATH).split(':')) {
    const file = path.resolve(cwd, dir === '' ? '.' : dir, command);
    try {
      checkExecutable(file);
      return file;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES') sawAccessError = err as NodeJS.ErrnoException;
      else if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
  }
  throw sawAccessError ?? sysError('ENOENT', 2, 'execvp', command);
}
