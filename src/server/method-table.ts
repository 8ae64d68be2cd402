import { type MethodHandlers, type MethodName, type MethodParams, methods } from '../protocol/index.js';
import { configHttpHandlers } from './config-http-handlers.js';
import { fsHandlers } from './fs-handlers.js';
import type { HandlerContext } from './handler-context.js';
import { processHandlers } from './process-handlers.js';

/** A method's params validated as declared in the protocol, then its handler: a value, or a promise of one. */
export type Route = (ctx: HandlerContext, raw: unknown) => unknown;

/** A handler for every method the protocol declares (a method without one fails typecheck). */
const handlers: MethodHandlers<HandlerContext> = { ...processHandlers, ...fsHandlers, ...configHttpHandlers };

function route<M extends MethodName>(name: M): Route {
  const parse = methods[name].parse as (raw: unknown) => MethodParams<M>;
  const handler = handlers[name] as (ctx: HandlerContext, params: MethodParams<M>) => unknown;
  return (ctx, raw) => handler(ctx, parse(raw));
}

/** Every method a session may call after the handshake, by wire name. */
export const methodTable: ReadonlyMap<string, Route> = new Map(
  (Object.keys(methods) as MethodName[]).map((name) => [name, route(name)] as const),
);
