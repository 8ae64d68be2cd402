#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { closeInheritedDescriptors } from '../local/inherited-fds.js';
import { LOG_LEVELS } from './log-levels.js';
import { flushStdio } from './stdio.js';

// Before anything else: descriptors inherited from whoever started us must not reach children.
closeInheritedDescriptors();
// A closed stderr (`2>&1 | head`) must not crash us: there is nowhere left to report anything.
process.stderr.on('error', () => undefined);

const int =
  (name: string) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** Leaves with `code` once stdout and stderr are flushed (a pipe may not have taken everything yet). */
async function exit(code: number): Promise<never> {
  await flushStdio();
  process.exit(code);
}

const urlOption = (what: string): Option => new Option('--url <url>', what).env('CORDON_URL');
const tokenOption = (): Option =>
  new Option('--token-file <file>', 'file holding the bearer token for --url (default: the CORDON_TOKEN variable)');
const reconnectOption = (): Option =>
  new Option('--reconnect-window-ms <ms>', 'how long to try to resume after the connection drops')
    .argParser(int('--reconnect-window-ms'))
    .default(15_000);

/** The managed network flags, shared by serve (the operator's policy) and exec/sandbox (in-process commands). */
function withNetworkOptions(command: Command, who: string): Command {
  return command
    .option(
      '--network-allow <pattern>',
      `let ${who} reach this host pattern through the managed proxy (repeatable; implies the proxy)`,
      collect,
      [] as string[],
    )
    .option('--network-deny <pattern>', `never let ${who} reach this host pattern (repeatable; implies the proxy)`, collect, [] as string[])
    .option('--network-mode <mode>', 'full, or limited (GET/HEAD/OPTIONS only, no CONNECT)')
    .option('--network-allow-local-binding', 'let the proxy reach local/private addresses')
    .option('--network-trusted-range <cidr>', 'a private range (an intranet) the proxy may reach (repeatable)', collect, [] as string[]);
}

const program = new Command()
  .name('cordon')
  .description('An execution server for coding agents (Codex exec-server compatible)')
  .showHelpAfterError()
  // Usage errors (unknown option, missing or extra argument) exit 2, as usage errors do.
  .exitOverride((err: CommanderError) => {
    void exit(err.exitCode === 1 ? 2 : err.exitCode);
    throw err;
  })
  .enablePositionalOptions();

withNetworkOptions(
  program
    .command('serve')
    .description('serve the exec-server protocol over WebSocket or stdio')
    .option('--listen <address>', 'ws://HOST:PORT or stdio', 'ws://127.0.0.1:8765')
    .option(
      '--token-file <file>',
      'require `Authorization: Bearer <token>` with the token in this file (default: the CORDON_TOKEN variable, if set)',
    )
    .option('--insecure-no-auth', 'allow listening on a non-loopback address without a token')
    .option('--session-grace-ms <ms>', 'how long a detached session waits to be resumed', int('--session-grace-ms'), 30_000)
    .option('--retain-bytes <bytes>', 'output bytes retained per process', int('--retain-bytes'), 1024 * 1024)
    .option('--retain-exited-ms <ms>', 'how long an exited process stays readable', int('--retain-exited-ms'), 30_000)
    .option('--max-processes <n>', 'processes a session may hold at once', int('--max-processes'), 1024)
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option(
      '--permissions <profile>',
      'the most access any client gets: :workspace (default), :read-only, :danger-full-access, or a profile of --config',
    )
    .option('--workspace <dir>', 'a workspace root of the ceiling (repeatable; default: the current directory)', collect, [] as string[])
    .option('--config <file>', 'cordon.toml with [permissions.NAME] profiles')
    .option('--rules <file>', 'a .rules file of command rules checked before every process start (repeatable)', collect, [] as string[])
    .option(
      '--rules-dir <dir>',
      'a directory whose *.rules files are loaded like ~/.codex/rules: one that does not load is skipped with a warning (repeatable)',
      collect,
      [] as string[],
    )
    .option('--requirements <file>', "a requirements.toml whose [rules] (Codex's managed command rules) are laid over the rules files")
    .addOption(
      new Option(
        '--approval-policy <policy>',
        "judge every process start as Codex's client would under this approval policy: heuristics for commands no rule matches (docs/exec-policy.md)",
      ).choices(['never', 'on-request', 'untrusted']),
    ),
  'processes',
).action(async (opts) => exit(await (await import('./serve.js')).runServe(opts)));

withNetworkOptions(
  program
    .command('exec')
    .description('run a command through a server (or in-process without --url) and exit with its code')
    .addOption(urlOption('ws:// URL of a Cordon server (default: run in-process)'))
    .addOption(tokenOption())
    .addOption(reconnectOption())
    .option('--tty', 'run the command on a pseudo-terminal')
    .option('--cwd <dir>', 'working directory of the command', process.cwd())
    .option('--env <K=V>', 'set an environment variable (repeatable)', collect, [] as string[])
    .argument('<command...>', 'the command and its arguments (after --)'),
  'the command',
).action(async (command: string[], opts) => exit(await (await import('./exec.js')).runExec(command, opts)));

withNetworkOptions(
  program
    .command('sandbox')
    .description('run a command locally under a permission profile (bubblewrap + seccomp) and exit with its code')
    .option(
      '--permissions <profile>',
      ':workspace, :read-only, :danger-full-access, or a profile of --config (default: :workspace, or the config default)',
    )
    .option('--config <file>', 'cordon.toml with [permissions.NAME] profiles')
    .option('--cwd <dir>', 'working directory and workspace root', process.cwd())
    .option('--allow-network', 'let the command use the network')
    .option('--tty', 'run the command on a pseudo-terminal')
    .option('--env <K=V>', 'set an environment variable (repeatable)', collect, [] as string[])
    .argument('<command...>', 'the command and its arguments (after --)'),
  'the command',
).action(async (command: string[], opts) => exit(await (await import('./sandbox.js')).runSandbox(command, opts)));

program
  .command('fs')
  .description('files on a server (or here without --url): ls DIR, cat FILE, stat PATH, rm PATH, put LOCAL REMOTE, get REMOTE LOCAL')
  .argument('<verb>', 'ls, cat, stat, rm, put or get')
  .argument('[paths...]', 'paths (remote paths are absolute or file:// URIs)')
  .addOption(urlOption('ws:// URL of a Cordon server (default: this machine)'))
  .addOption(tokenOption())
  .action(async (verb: string, paths: string[], opts) => exit(await (await import('./fs.js')).runFs(verb, paths, opts)));

program
  .command('policy')
  .description('exec policy (.rules files)')
  .enablePositionalOptions()
  .command('check')
  .description('judge a command against .rules files and print the decision as JSON (as `codex execpolicy check` does)')
  .option('-r, --rules <path>', 'a .rules file to evaluate (repeatable)', collect, [] as string[])
  .option('--pretty', 'pretty-print the JSON output')
  .option('--resolve-host-executables', 'let absolute program paths match rules for their basename, gated by host_executable()')
  .argument('[command...]', 'the command tokens to check (options after the first token belong to the command)')
  .passThroughOptions()
  .action(async (command: string[], opts) => exit(await (await import('./policy.js')).runPolicyCheck(command, opts)));

program
  .command('doctor')
  .description('check what the sandbox needs from this host, and print the fix for what is missing')
  .action(async () => exit(await (await import('./sandbox.js')).runDoctorCommand()));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  await new Promise(() => undefined); // exitOverride is flushing and exiting
}
