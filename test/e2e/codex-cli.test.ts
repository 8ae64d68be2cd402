import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { sourcePath } from '../built-cli.js';
import { findCodexBinary } from './codex-install.js';
import { assistantMessage, customToolCall, functionCall, type Json, type Turn, toolOutput } from './mock-model.js';
import { type ScenarioRun, serverKind, withScenario } from './scenario.js';

/**
 * The real Codex CLI (`codex exec`, from npm) drives an exec-server as its remote executor, with a
 * scripted mock model. Everything listens on 127.0.0.1. By default the server is Cordon;
 * CORDON_E2E_SERVER=reference runs the same scenarios against the reference exec-server.
 */

const CLI_VERSIONS = ['0.139.0', '0.171.0'] as const;
const STDIO_MCP_SERVER = sourcePath('test', 'e2e', 'fixtures', 'mcp-stdio-server.mjs');
// Codex 0.171 does not wait for MCP servers before the first turn: a tool_search made while a server
// is still starting finds nothing (seen on a loaded CI machine; reproduced by delaying the fixture's
// start by 6 s). `required = true` makes the CLI wait for the server's start (and fail if it cannot
// start), so the scenario tests the route through the executor, not a race with the mock model.
const MCP_SERVER_WAITED_FOR = 'startup_timeout_sec = 120\nrequired = true';

function exec(callId: string, cmd: string): Json {
  return functionCall(callId, 'exec_command', { cmd, yield_time_ms: 30_000 });
}

/** The requests (client to server) the tap saw, by method. */
function requestsTo(run: ScenarioRun, method: string): Json[] {
  return run.tap.log.filter((e) => e.dir === '>>' && e.msg.method === method).map((e) => e.msg);
}

function outputOf(run: ScenarioRun, callId: string): string {
  const out = toolOutput(run.mock.requests, callId);
  assert.ok(out !== undefined, `the model never got the output of ${callId}\n${run.explain()}`);
  return out;
}

/** A tool named `*suffix` among `tools` (functions, or functions inside a namespace). */
function findTool(tools: Json[], suffix: string): { name: string; namespace?: string } | undefined {
  for (const tool of tools) {
    if (typeof tool.name === 'string' && tool.name.endsWith(suffix) && tool.type !== 'namespace') return { name: tool.name };
    for (const inner of (tool.tools ?? []) as Json[]) {
      if (typeof inner.name === 'string' && inner.name.endsWith(suffix)) return { name: inner.name, namespace: tool.name };
    }
  }
  return undefined;
}

function callTool(callId: string, tool: { name: string; namespace?: string }, args: Json): Json {
  const call = functionCall(callId, tool.name, args);
  if (tool.namespace) call.namespace = tool.namespace;
  return call;
}

/**
 * Two model turns that call the MCP tool `*suffix`: directly when the CLI offers it upfront,
 * else (0.171 defers MCP tools) through `tool_search` first, calling it under the name the search
 * returned.
 */
function mcpToolTurns(callId: string, suffix: string, args: Json): Turn[] {
  return [
    (body) => {
      const offered = findTool((body.tools ?? []) as Json[], suffix);
      if (offered) return [callTool(callId, offered, args)];
      return [
        {
          type: 'tool_search_call',
          id: `ts_${callId}`,
          call_id: `search-${callId}`,
          execution: 'client',
          status: 'completed',
          arguments: { query: suffix },
        },
      ];
    },
    (body) => {
      const input = (body.input ?? []) as Json[];
      if (input.some((i) => i.call_id === callId)) return [assistantMessage('done')];
      const found = input.find((i) => i.type === 'tool_search_output');
      const tool = findTool((found?.tools ?? []) as Json[], suffix);
      if (!tool) return [assistantMessage(`mock model: tool_search found no *${suffix}: ${JSON.stringify(found)}`)];
      return [callTool(callId, tool, args)];
    },
  ];
}

const installed = CLI_VERSIONS.filter((v) => findCodexBinary(v));
const missing = CLI_VERSIONS.filter((v) => !findCodexBinary(v));
const skipReason = missing.length
  ? `Codex CLI ${missing.join(', ')} not installed: run test/e2e/install-codex.sh ${missing.join(' ')}`
  : undefined;

// The two CLI generations run side by side (each scenario has its own scratch tree, server, tap and
// mock model); the scenarios of one generation run one after another.
describe('e2e: the Codex CLI drives the exec-server', { concurrency: true }, () => {
  if (missing.length && process.env.CI && process.env.CI !== 'false') {
    it('has the Codex CLI installed', () => assert.fail(skipReason));
  }

  for (const version of CLI_VERSIONS) {
    const skip = installed.includes(version) ? false : skipReason;
    const modern = version !== '0.139.0';

    describe(`codex ${version} against ${serverKind()}`, { skip }, () => {
      it('runs a command; its output reaches the model', async () => {
        await withScenario({ name: 'command', cliVersion: version, turns: [[exec('c1', 'echo cordon-e2e-$((6*7))')]] }, (run) => {
          assert.match(outputOf(run, 'c1'), /cordon-e2e-42/, run.explain());
          assert.ok(requestsTo(run, 'process/start').length >= 1, `no process/start on the wire\n${run.explain()}`);
          assert.equal(run.result.code, 0, run.explain());
        });
      });

      it('writes inside the workspace and is refused outside it (--sandbox workspace-write)', async () => {
        await withScenario(
          {
            name: 'sandboxed-write',
            cliVersion: version,
            turns: (d) => [
              [exec('in', `printf inside > ${path.join(d.workspace, 'inside.txt')} && echo wrote-inside`)],
              [exec('out', `printf outside > ${path.join(d.outside, 'escape.txt')} && echo wrote-outside`)],
            ],
          },
          (run) => {
            assert.match(outputOf(run, 'in'), /wrote-inside/, run.explain());
            assert.equal(readFileSync(path.join(run.dirs.workspace, 'inside.txt'), 'utf8'), 'inside');
            const refused = outputOf(run, 'out');
            assert.doesNotMatch(refused, /wrote-outside/, run.explain());
            assert.match(refused, /Read-only file system|Permission denied|Operation not permitted/, run.explain());
            assert.equal(existsSync(path.join(run.dirs.outside, 'escape.txt')), false, 'the write outside the workspace landed');
          },
        );
      });

      it('applies a patch that adds and updates files', async () => {
        await withScenario(
          {
            name: 'apply-patch',
            cliVersion: version,
            turns: (d) => {
              writeFileSync(path.join(d.workspace, 'existing.txt'), 'alpha\nbeta\ngamma\n');
              const patch = [
                '*** Begin Patch',
                '*** Add File: added.txt',
                '+hello from apply_patch',
                '*** Update File: existing.txt',
                '@@',
                ' alpha',
                '-beta',
                '+BETA',
                ' gamma',
                '*** End Patch',
              ].join('\n');
              return [[customToolCall('p1', 'apply_patch', patch)]];
            },
          },
          (run) => {
            const out = outputOf(run, 'p1');
            assert.equal(
              readFileSync(path.join(run.dirs.workspace, 'added.txt'), 'utf8'),
              'hello from apply_patch\n',
              `${out}\n${run.explain()}`,
            );
            assert.equal(readFileSync(path.join(run.dirs.workspace, 'existing.txt'), 'utf8'), 'alpha\nBETA\ngamma\n', run.explain());
          },
        );
      });

      it('writes into an extra root given with --add-dir', async () => {
        await withScenario(
          {
            name: 'add-dir',
            cliVersion: version,
            args: (d) => ['--add-dir', d.extra],
            turns: (d) => [[exec('x1', `printf extra > ${path.join(d.extra, 'added.txt')} && echo wrote-extra`)]],
          },
          (run) => {
            assert.match(outputOf(run, 'x1'), /wrote-extra/, run.explain());
            assert.equal(readFileSync(path.join(run.dirs.extra, 'added.txt'), 'utf8'), 'extra');
          },
        );
      });

      // A sandbox's mount targets (an empty `.git`, `.codex`, ...) left on the host make the CLI,
      // which probes for `.git` to find the project root, and the user's own tools see a repository
      // that is not there. The reference removes them when each sandbox ends.
      it('leaves nothing of its own in the workspace, an extra root or the ceiling root', async () => {
        await withScenario(
          {
            name: 'clean',
            cliVersion: version,
            args: (d) => ['--add-dir', d.extra],
            turns: (d) => [
              [
                exec(
                  'w1',
                  `printf one > ${path.join(d.workspace, 'one.txt')} && printf two > ${path.join(d.extra, 'two.txt')} && echo wrote-both`,
                ),
              ],
              [customToolCall('p1', 'apply_patch', '*** Begin Patch\n*** Add File: three.txt\n+three\n*** End Patch')],
            ],
          },
          (run) => {
            assert.match(outputOf(run, 'w1'), /wrote-both/, run.explain());
            outputOf(run, 'p1');
            const listing = (dir: string): string[] => readdirSync(dir).sort();
            const dotted = listing(run.dirs.base).filter((n) => n.startsWith('.'));
            const found = { workspace: listing(run.dirs.workspace), extra: listing(run.dirs.extra), ceilingRootDotEntries: dotted };
            assert.deepEqual(
              found,
              { workspace: ['one.txt', 'three.txt'], extra: ['two.txt'], ceilingRootDotEntries: [] },
              `entries the executor left behind: ${JSON.stringify(found)}\n${run.explain()}`,
            );
          },
        );
      });

      it('survives a connection dropped mid-command (session resume)', {
        skip: modern ? false : 'the 0.139 CLI never resumes a session',
      }, async () => {
        await withScenario(
          {
            name: 'drop',
            cliVersion: version,
            turns: [[exec('d1', 'echo before-drop; sleep 2; echo after-drop')]],
            arm: (tap) => {
              void tap.dropOnce((e) => e.conn === 1 && e.dir === '<<' && e.msg.method === 'process/output');
            },
          },
          (run) => {
            const out = outputOf(run, 'd1');
            assert.match(out, /before-drop[\s\S]*after-drop/, run.explain());
            const inits = requestsTo(run, 'initialize');
            assert.ok(inits.length >= 2, `the CLI did not reconnect\n${run.explain()}`);
            const first = run.tap.log.find((e) => e.dir === '<<' && e.msg.result?.sessionId);
            assert.equal(inits[1]!.params.resumeSessionId, first?.msg.result.sessionId, run.explain());
          },
        );
      });

      it('reaches an HTTP MCP server configured only on the executor', {
        skip: modern ? false : 'the 0.139 CLI does not read the executor config (no environmentConfig/read)',
      }, async () => {
        const { startMcpHttpServer } = await import('./mcp-http-server.js');
        const mcp = await startMcpHttpServer();
        try {
          await withScenario(
            {
              name: 'mcp-http-executor',
              cliVersion: version,
              // http/request obeys the operator's network rules: the default ceiling has no network,
              // so this executor allows its loopback MCP server through the managed network policy.
              cordonArgs: ['--network-allow', '127.0.0.1', '--network-allow-local-binding'],
              executorConfig: () =>
                `approval_policy = "never"\n\n[mcp_servers.e2ehttp]\nurl = ${JSON.stringify(mcp.url)}\ndefault_tools_approval_mode = "approve"\n${MCP_SERVER_WAITED_FOR}\n`,
              turns: mcpToolTurns('m1', 'http_probe', { text: 'hello-http' }),
            },
            (run) => {
              assert.ok(
                requestsTo(run, 'environmentConfig/read').length >= 1,
                `the CLI never read the executor's config\n${run.explain()}`,
              );
              assert.match(outputOf(run, 'm1'), /http probe: hello-http/, run.explain());
              assert.ok(mcp.methods.includes('tools/call'), `MCP server saw ${mcp.methods.join(', ')}`);
              assert.ok(requestsTo(run, 'http/request').length >= 1, `the MCP traffic did not go through the executor\n${run.explain()}`);
            },
          );
        } finally {
          await mcp.close();
        }
      });

      it('launches a stdio MCP server on the executor', async () => {
        await withScenario(
          {
            name: 'mcp-stdio',
            cliVersion: version,
            cliConfig: (d) =>
              [
                '',
                '[mcp_servers.e2estdio]',
                `command = ${JSON.stringify(process.execPath)}`,
                `args = [${JSON.stringify(STDIO_MCP_SERVER)}]`,
                `cwd = ${JSON.stringify(d.workspace)}`,
                'environment_id = "remote"',
                'default_tools_approval_mode = "approve"',
                MCP_SERVER_WAITED_FOR,
                '',
              ].join('\n'),
            turns: mcpToolTurns('s1', 'stdio_probe', { text: 'hello-stdio' }),
          },
          (run) => {
            assert.ok(outputOf(run, 's1').includes(`stdio probe: hello-stdio cwd=${run.dirs.workspace}`), run.explain());
            const starts = requestsTo(run, 'process/start');
            assert.ok(
              starts.some((m) => JSON.stringify(m.params.argv).includes('mcp-stdio-server.mjs')),
              `the MCP server was not launched through the executor\n${run.explain()}`,
            );
          },
        );
      });
    });
  }
});
