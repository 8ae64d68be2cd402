import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'smol-toml';
import type { EnvironmentConfig, EnvironmentConfigLayer, EnvironmentConfigRequest } from '../environment/types.js';
import { internalError, invalidParams, methodMessages } from '../protocol/index.js';

/** Where this machine's Codex configuration lives. */
export interface ConfigSources {
  /** `$CODEX_HOME`, else `~/.codex`. */
  codexHome: string;
  userHome: string;
  hostname: string;
  /** The managed requirements file (`/etc/codex/requirements.toml`). */
  requirementsFile: string;
}

/** A config file larger than this is refused rather than read into memory. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** The file's text, or undefined when there is no such file. */
async function readOptional(file: string): Promise<string | undefined> {
  try {
    const info = await stat(file);
    if (!info.isFile()) return undefined;
    if (info.size > MAX_CONFIG_BYTES) throw internalError(methodMessages.configLoad(`${file} is larger than ${MAX_CONFIG_BYTES} bytes`));
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code) throw internalError(methodMessages.configLoad(`${file}: ${(err as Error).message}`));
    throw err;
  }
}

function parseToml(text: string, describe: string): Table {
  try {
    return parse(text) as Table;
  } catch (err) {
    throw internalError(methodMessages.configLoad(`${describe}: ${err instanceof Error ? err.message : String(err)}`));
  }
}

/**
 * Only the selected key paths of a document, each kept as far as it exists: `[["mcp_servers","foo"]]`
 * of a document with `mcp_servers` but no `foo` is an empty `mcp_servers` table. Undefined when
 * nothing was selected.
 */
export function selectKeys(doc: Table, paths: string[][]): Table | undefined {
  const out: Table = {};
  for (const keys of paths) {
    let src: Table = doc;
    let dst: Table = out;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      if (!(key in src)) break;
      const value = src[key];
      if (i === keys.length - 1) {
        dst[key] = value;
        break;
      }
      if (!isTable(value)) break;
      if (!isTable(dst[key])) dst[key] = {};
      dst = dst[key] as Table;
      src = value;
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** A `.git` file (worktree) or a `.git` directory that holds a repository. */
async function isGitRoot(dir: string): Promise<boolean> {
  try {
    const info = await stat(path.join(dir, '.git'));
    if (info.isFile()) return true;
    return info.isDirectory() && (await stat(path.join(dir, '.git', 'HEAD'))).isFile();
  } catch {
    return false;
  }
}

/** The directories from the repository root down to `cwd` (just `cwd` outside a repository), outermost first. */
async function projectDirs(cwd: string): Promise<{ dirs: string[]; gitRoot: string | undefined }> {
  const chain: string[] = [];
  for (let dir = cwd; ; dir = path.dirname(dir)) {
    chain.push(dir);
    if (await isGitRoot(dir)) return { dirs: chain.reverse(), gitRoot: dir };
    if (path.dirname(dir) === dir) return { dirs: [cwd], gitRoot: undefined };
  }
}

/** `[projects."<dir>"] trust_level = "trusted"` for the directory itself, else for its repository root. */
function trusted(userConfig: Table, dir: string, gitRoot: string | undefined): boolean {
  const projects = isTable(userConfig.projects) ? userConfig.projects : {};
  const levels = new Map<string, unknown>();
  for (const [key, value] of Object.entries(projects)) if (isTable(value)) levels.set(path.resolve(key), value.trust_level);
  const own = levels.get(dir);
  if (own !== undefined) return own === 'trusted';
  return gitRoot !== undefined && levels.get(gitRoot) === 'trusted';
}

function layer(source: string, baseDir: string, doc: Table, paths: string[][]): EnvironmentConfigLayer | undefined {
  const selected = selectKeys(doc, paths);
  return selected ? { source, baseDir, toml: stringify(selected) } : undefined;
}

/**
 * environmentConfig/read: this machine's Codex config, lowest precedence first: the user layer
 * (`$CODEX_HOME/config.toml`), then the `.codex/config.toml` of each trusted directory from the
 * repository root down to `cwd`; and the requirements layer. Each layer holds only the selected keys;
 * layers without any are left out. A malformed file is a -32603 naming it.
 */
export async function readEnvironmentConfig(request: EnvironmentConfigRequest, sources: ConfigSources): Promise<EnvironmentConfig> {
  if (request.configPaths.length === 0 && request.requirementsPaths.length === 0) throw invalidParams(methodMessages.configPathsRequired);
  if ([...request.configPaths, ...request.requirementsPaths].some((p) => p.length === 0)) throw invalidParams(methodMessages.tomlPathEmpty);
  const configLayers: EnvironmentConfigLayer[] = [];
  const userFile = path.join(sources.codexHome, 'config.toml');
  const userText = await readOptional(userFile);
  const userConfig = userText === undefined ? {} : parseToml(userText, userFile);
  if (userText !== undefined) {
    const l = layer(`user (${userFile})`, sources.codexHome, userConfig, request.configPaths);
    if (l) configLayers.push(l);
  }
  const cwd = path.resolve(request.cwd);
  const { dirs, gitRoot } = await projectDirs(cwd);
  for (const dir of dirs) {
    if (!trusted(userConfig, dir, gitRoot)) continue;
    const file = path.join(dir, '.codex', 'config.toml');
    const text = await readOptional(file);
    if (text === undefined) continue;
    const l = layer(
      `project (${file})`,
      path.dirname(file),
      parseToml(text, `Error parsing project config file ${file}`),
      request.configPaths,
    );
    if (l) configLayers.push(l);
  }
  const requirementLayers: EnvironmentConfigLayer[] = [];
  const reqText = request.requirementsPaths.length > 0 ? await readOptional(sources.requirementsFile) : undefined;
  if (reqText !== undefined) {
    const l = layer(
      `requirements (${sources.requirementsFile})`,
      path.dirname(sources.requirementsFile),
      parseToml(reqText, sources.requirementsFile),
      request.requirementsPaths,
    );
    if (l) requirementLayers.push(l);
  }
  return {
    userHomeDir: sources.userHome,
    codexHomeDir: sources.codexHome,
    hostname: sources.hostname,
    config: { layers: configLayers, cloudInsertionIndex: 0 },
    requirements: { layers: requirementLayers, cloudInsertionIndex: 0 },
  };
}
