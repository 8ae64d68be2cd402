/**
 * A classic-BPF seccomp program, built here (no native addon, no compiler) and handed to bubblewrap
 * with `--seccomp FD`. Default allow; listed calls fail with EPERM (docs/sandbox.md, "What the
 * sandbox enforces").
 */

export interface SeccompOptions {
  /** Restricted network: sockets other than AF_UNIX, connect, bind, listen, accept... are refused. */
  restrictNetwork: boolean;
  /**
   * Proxied network (the process's only way out is the proxy bridge inside its network namespace):
   * sockets only of families AF_INET/AF_INET6 and types stream/datagram (no AF_UNIX, netlink,
   * packet or raw sockets: no host Unix socket can be reached); socketpair only AF_UNIX.
   * Connect/bind/listen are allowed, as the namespace holds nothing but its own loopback.
   */
  proxied?: boolean;
  arch?: NodeJS.Architecture;
}

interface Insn {
  code: number;
  jt: number | string;
  jf: number | string;
  k: number;
  label?: string;
}

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_KILL_PROCESS = 0x80000000;
const EPERM = 1;
const ENOSYS = 38;

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_TYPE_MASK = 0xf;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const BPF_ALU_AND_K = 0x54;
/** Terminal ioctls that push input into a terminal (TIOCSTI) or drive the console (TIOCLINUX, whose selection paste does the same). */
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const CLONE_NEWUSER = 0x10000000;

/** offsetof(struct seccomp_data, ...) */
const OFF_NR = 0;
const OFF_ARCH = 4;
const arg = (n: number, high = false): number => 16 + n * 8 + (high ? 4 : 0);

interface ArchTable {
  audit: number;
  x32Bit?: number;
  nr: Record<string, number>;
}

const ARCHES: Partial<Record<NodeJS.Architecture, ArchTable>> = {
  x64: {
    audit: 0xc000003e,
    x32Bit: 0x40000000,
    nr: {
      ptrace: 101,
      process_vm_readv: 310,
      process_vm_writev: 311,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
      mount: 165,
      umount2: 166,
      pivot_root: 155,
      move_mount: 429,
      open_tree: 428,
      fsopen: 430,
      fsconfig: 431,
      fsmount: 432,
      fspick: 433,
      mount_setattr: 442,
      keyctl: 250,
      add_key: 248,
      request_key: 249,
      bpf: 321,
      setns: 308,
      unshare: 272,
      clone: 56,
      clone3: 435,
      kexec_load: 246,
      kexec_file_load: 320,
      init_module: 175,
      finit_module: 313,
      delete_module: 176,
      perf_event_open: 298,
      userfaultfd: 323,
      socket: 41,
      socketpair: 53,
      connect: 42,
      accept: 43,
      accept4: 288,
      bind: 49,
      listen: 50,
      getpeername: 52,
      getsockname: 51,
      shutdown: 48,
      sendto: 44,
      sendmmsg: 307,
      recvmmsg: 299,
      getsockopt: 55,
      setsockopt: 54,
      ioctl: 16,
    },
  },
  arm64: {
    audit: 0xc00000b7,
    nr: {
      ptrace: 117,
      process_vm_readv: 270,
      process_vm_writev: 271,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
      mount: 40,
      umount2: 39,
      pivot_root: 41,
      move_mount: 429,
      open_tree: 428,
      fsopen: 430,
      fsconfig: 431,
      fsmount: 432,
      fspick: 433,
      mount_setattr: 442,
      keyctl: 219,
      add_key: 217,
      request_key: 218,
      bpf: 280,
      setns: 268,
      unshare: 97,
      clone: 220,
      clone3: 435,
      kexec_load: 104,
      kexec_file_load: 294,
      init_module: 105,
      finit_module: 273,
      delete_module: 106,
      perf_event_open: 241,
      userfaultfd: 282,
      socket: 198,
      socketpair: 199,
      connect: 203,
      accept: 202,
      accept4: 242,
      bind: 200,
      listen: 201,
      getpeername: 205,
      getsockname: 204,
      shutdown: 210,
      sendto: 206,
      sendmmsg: 269,
      recvmmsg: 243,
      getsockopt: 209,
      setsockopt: 208,
      ioctl: 29,
    },
  },
};

/** Always refused (besides the ioctls TIOCSTI and TIOCLINUX): tracing other processes, io_uring (it bypasses this filter), mounts, keyrings, bpf, namespaces, modules. */
const ALWAYS_DENIED = [
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'mount',
  'umount2',
  'pivot_root',
  'move_mount',
  'open_tree',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'keyctl',
  'add_key',
  'request_key',
  'bpf',
  'setns',
  'kexec_load',
  'kexec_file_load',
  'init_module',
  'finit_module',
  'delete_module',
  'perf_event_open',
  'userfaultfd',
];

/**
 * Refused when the network is restricted: only AF_UNIX sockets can be created, and they can neither
 * reach nor offer an endpoint. Calls on sockets already held (getsockname, getsockopt, shutdown...)
 * stay allowed: a child's stdio are AF_UNIX socketpairs, and runtimes such as Node inspect them.
 */
const NETWORK_DENIED = ['connect', 'accept', 'accept4', 'bind', 'listen', 'sendmmsg', 'recvmmsg'];

export const seccompSupported = (arch: NodeJS.Architecture = process.arch): boolean => ARCHES[arch] !== undefined;

/** The filter as `struct sock_filter[]` bytes (8 bytes per instruction, host byte order: little endian). */
export function buildSeccompFilter(options: SeccompOptions): Buffer {
  const table = ARCHES[options.arch ?? process.arch];
  if (!table) throw new Error(`seccomp filter: unsupported architecture ${options.arch ?? process.arch}`);
  const nr = (name: string): number => table.nr[name] as number;
  const prog: Insn[] = [];
  const emit = (code: number, k: number, jt: number | string = 0, jf: number | string = 0, label?: string): void =>
    void prog.push({ code, k, jt, jf, ...(label ? { label } : {}) });

  emit(BPF_LD_W_ABS, OFF_ARCH);
  emit(BPF_JEQ_K, table.audit, 0, 'kill');
  emit(BPF_LD_W_ABS, OFF_NR);
  if (table.x32Bit !== undefined) emit(BPF_JGE_K, table.x32Bit, 'eperm', 0);
  const proxied = options.proxied === true;
  const restrict = options.restrictNetwork && !proxied;
  const denied = [...ALWAYS_DENIED, ...(restrict ? NETWORK_DENIED : [])];
  for (const name of denied) emit(BPF_JEQ_K, nr(name), 'eperm', 0);
  emit(BPF_JEQ_K, nr('clone3'), 'enosys', 0); // clone3's flags are behind a pointer; libc falls back to clone
  emit(BPF_JEQ_K, nr('unshare'), 'check_newuser_arg0', 0);
  emit(BPF_JEQ_K, nr('clone'), 'check_newuser_arg0', 0);
  emit(BPF_JEQ_K, nr('ioctl'), 'check_ioctl_request', 0);
  if (proxied) {
    emit(BPF_JEQ_K, nr('socket'), 'check_inet_arg0', 0);
    emit(BPF_JEQ_K, nr('socketpair'), 'check_unix_arg0', 0);
  }
  if (restrict) {
    emit(BPF_JEQ_K, nr('socket'), 'check_unix_arg0', 0);
    emit(BPF_JEQ_K, nr('socketpair'), 'check_unix_arg0', 0);
    emit(BPF_JEQ_K, nr('sendto'), 'check_sendto_addr', 0);
  }
  emit(BPF_RET_K, RET_ALLOW);

  emit(BPF_LD_W_ABS, arg(0), 0, 0, 'check_newuser_arg0');
  emit(BPF_JSET_K, CLONE_NEWUSER, 'eperm', 'allow');
  // The kernel takes an ioctl's request as a 32-bit int: only the low word counts.
  emit(BPF_LD_W_ABS, arg(1), 0, 0, 'check_ioctl_request');
  emit(BPF_JEQ_K, TIOCSTI, 'eperm', 0);
  emit(BPF_JEQ_K, TIOCLINUX, 'eperm', 'allow');
  if (proxied) {
    emit(BPF_LD_W_ABS, arg(0), 0, 0, 'check_unix_arg0');
    emit(BPF_JEQ_K, AF_UNIX, 'allow', 'eperm');
    emit(BPF_LD_W_ABS, arg(0), 0, 0, 'check_inet_arg0');
    emit(BPF_JEQ_K, AF_INET, 'check_type_arg1', 0);
    emit(BPF_JEQ_K, AF_INET6, 'check_type_arg1', 'eperm');
    emit(BPF_LD_W_ABS, arg(1), 0, 0, 'check_type_arg1');
    emit(BPF_ALU_AND_K, SOCK_TYPE_MASK);
    emit(BPF_JEQ_K, SOCK_STREAM, 'allow', 0);
    emit(BPF_JEQ_K, SOCK_DGRAM, 'allow', 'eperm');
  }
  if (restrict) {
    emit(BPF_LD_W_ABS, arg(0), 0, 0, 'check_unix_arg0');
    emit(BPF_JEQ_K, AF_UNIX, 'allow', 'eperm');
    // sendto on a connected socket (what send() is) passes a NULL address; a destination is refused.
    emit(BPF_LD_W_ABS, arg(4), 0, 0, 'check_sendto_addr');
    emit(BPF_JEQ_K, 0, 0, 'eperm');
    emit(BPF_LD_W_ABS, arg(4, true));
    emit(BPF_JEQ_K, 0, 'allow', 'eperm');
  }
  emit(BPF_RET_K, RET_ALLOW, 0, 0, 'allow');
  emit(BPF_RET_K, RET_ERRNO | EPERM, 0, 0, 'eperm');
  emit(BPF_RET_K, RET_ERRNO | ENOSYS, 0, 0, 'enosys');
  emit(BPF_RET_K, RET_KILL_PROCESS, 0, 0, 'kill');

  const labels = new Map<string, number>();
  prog.forEach((insn, i) => insn.label && labels.set(insn.label, i));
  const out = Buffer.alloc(prog.length * 8);
  prog.forEach((insn, i) => {
    const rel = (j: number | string): number => {
      if (typeof j === 'number') return j;
      const target = labels.get(j);
      if (target === undefined) throw new Error(`seccomp filter: unknown label ${j}`);
      const off = target - i - 1;
      if (off < 0 || off > 255) throw new Error(`seccomp filter: jump to ${j} out of range`);
      return off;
    };
    out.writeUInt16LE(insn.code, i * 8);
    out.writeUInt8(rel(insn.jt), i * 8 + 2);
    out.writeUInt8(rel(insn.jf), i * 8 + 3);
    out.writeUInt32LE(insn.k >>> 0, i * 8 + 4);
  });
  return out;
}

/** Runs the filter over one syscall, as the kernel would: for unit tests of the program itself. */
export function evaluateSeccomp(filter: Buffer, data: { arch: number; nr: number; args?: number[] }): number {
  const word = (off: number): number => {
    if (off === OFF_NR) return data.nr >>> 0;
    if (off === OFF_ARCH) return data.arch >>> 0;
    const index = Math.floor((off - 16) / 8);
    const high = (off - 16) % 8 === 4;
    const value = BigInt.asUintN(64, BigInt(data.args?.[index] ?? 0));
    return Number(high ? value >> 32n : value & 0xffffffffn);
  };
  let acc = 0;
  for (let pc = 0; pc * 8 < filter.length; ) {
    const code = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    if (code === BPF_LD_W_ABS) {
      acc = word(k);
      pc++;
    } else if (code === BPF_ALU_AND_K) {
      acc = (acc & k) >>> 0;
      pc++;
    } else if (code === BPF_RET_K) return k;
    else {
      const taken = code === BPF_JEQ_K ? acc === k : code === BPF_JGE_K ? acc >= k : code === BPF_JSET_K ? (acc & k) !== 0 : false;
      pc += 1 + (taken ? jt : jf);
    }
  }
  throw new Error('seccomp filter fell off its end');
}

export const SECCOMP = { RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, EPERM, ENOSYS, ARCHES, TIOCSTI, TIOCLINUX } as const;
