import { pathToFileURL } from 'node:url';
import type { EnvironmentConfigLayer, HttpBodyDelta } from '../environment/types.js';
import { NetworkPolicy } from '../network/policy.js';
import {
  Base64Error,
  Base64Result,
  type ConfigHttpMethodName,
  decodeBase64Strict,
  invalidParams,
  invalidRequest,
  type MethodHandlers,
  type MethodParams,
  methodMessages,
  parseAbsolutePath,
  type WireEnvironmentConfig,
} from '../protocol/index.js';
import type { HandlerContext } from './handler-context.js';

/** environmentConfig/read and http/request (0.150+ clients): directories go out as `file://` URIs. */

const uri = (p: string): string => pathToFileURL(p).href;
const wireLayer = (l: EnvironmentConfigLayer): WireEnvironmentConfig['config']['layers'][number] => ({
  source: l.source,
  baseDir: uri(l.baseDir),
  toml: l.toml,
});

export async function handleEnvironmentConfigRead(
  ctx: HandlerContext,
  p: MethodParams<'environmentConfig/read'>,
): Promise<WireEnvironmentConfig> {
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

/**
 * The operator's network rules bind http/request as they bind processes: a ceiling without network
 * refuses it, and a managed network policy judges every URL fetched (redirects included) and pins
 * the addresses it checked.
 */
function httpGuard(ctx: HandlerContext): ((url: URL, method: string) => Promise<string[]>) | undefined {
  if (ctx.ceilingNetwork === 'restricted') throw invalidRequest(methodMessages.httpNoNetwork);
  const operator = ctx.operatorNetwork;
  if (!operator) return undefined;
  const policy = new NetworkPolicy(
    {
      mode: operator.mode,
      domains: operator.domains,
      allowLocalBinding: operator.allowLocalBinding,
      trustedRanges: [...operator.trustedRanges, ...(ctx.trustedRanges ?? [])],
    },
    {
      ...(ctx.resolve ? { resolve: ctx.resolve } : {}),
      onDecision: (e) =>
        ctx.logger?.info(
          {
            host: e.host,
            port: e.port,
            protocol: e.protocol,
            decision: e.decision,
            source: e.source,
            reason: e.reason,
            method: 'http/request',
          },
          'network decision',
        ),
    },
  );
  return async (url, method) => {
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const verdict = await policy.check({ protocol: url.protocol === 'https:' ? 'https_connect' : 'http', host, port, method });
    if (!verdict.allowed) throw invalidRequest(methodMessages.httpPolicyRefused(host, port, verdict.reason));
    return verdict.addresses;
  };
}

export async function handleHttpRequest(ctx: HandlerContext, p: MethodParams<'http/request'>): Promise<Base64Result> {
  const guard = httpGuard(ctx);
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
    ...(guard ? { guard } : {}),
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

export const configHttpHandlers: MethodHandlers<HandlerContext, ConfigHttpMethodName> = {
  'environmentConfig/read': handleEnvironmentConfigRead,
  'http/request': handleHttpRequest,
};
