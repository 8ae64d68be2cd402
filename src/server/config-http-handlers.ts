import { pathToFileURL } from 'node:url';
import type { EnvironmentConfigLayer, HttpBodyDelta } from '../environment/types.js';
import {
  Base64Error,
  Base64Result,
  decodeBase64Strict,
  EnvironmentConfigReadParams,
  HttpRequestParams,
  invalidParams,
  parseAbsolutePath,
  parseParams,
} from '../protocol/index.js';
import type { HandlerContext } from './process-handlers.js';

/** environmentConfig/read and http/request (0.150+ clients): directories go out as `file://` URIs. */

const uri = (p: string): string => pathToFileURL(p).href;
const wireLayer = (l: EnvironmentConfigLayer): unknown => ({ source: l.source, baseDir: uri(l.baseDir), toml: l.toml });

export async function handleEnvironmentConfigRead(ctx: HandlerContext, raw: unknown): Promise<unknown> {
  const p = parseParams(EnvironmentConfigReadParams, raw, 'EnvironmentConfigReadParams');
  const config = await ctx.environment.readConfig({
    cwd: parseAbsolutePath(p.cwd),
    configPaths: p.configPaths,
    requirementsPaths: p.requirementsPaths,
  });
  return {
    userHomeDir: uri(config.userHomeDir),
    codexHomeDir: uri(config.codexHomeDir),
    hostname: config.hostname,
    config: { layers: config.config.layers.map(wireLayer), cloudInsertionIndex: config.config.cloudInsertionIndex },
    requirements: { layers: config.requirements.layers.map(wireLayer), cloudInsertionIndex: config.requirements.cloudInsertionIndex },
  };
}

export async function handleHttpRequest(ctx: HandlerContext, raw: unknown): Promise<Base64Result> {
  const p = parseParams(HttpRequestParams, raw, 'HttpRequestParams');
  let body: Buffer | null = null;
  if (p.bodyBase64) {
    try {
      body = decodeBase64Strict(p.bodyBase64);
    } catch (err) {
      if (err instanceof Base64Error) throw invalidParams(err.message);
      throw err;
    }
  }
  const response = await ctx.environment.http.request({
    method: p.method,
    url: p.url,
    requestId: p.requestId,
    headers: p.headers ?? [],
    body,
    timeoutMs: p.timeoutMs ?? null,
    redirectPolicy: p.redirectPolicy ?? 'follow',
    streamResponse: p.streamResponse ?? false,
  });
  const head = JSON.stringify({ status: response.status, headers: response.headers }).slice(0, -1);
  return new Base64Result(`${head},"bodyBase64":"`, response.body, '"}');
}

/** The params of an `http/request/bodyDelta` notification. */
export const wireBodyDelta = (d: HttpBodyDelta): unknown => ({
  requestId: d.requestId,
  seq: d.seq,
  deltaBase64: d.data.toString('base64'),
  done: d.done,
  error: d.error,
});
