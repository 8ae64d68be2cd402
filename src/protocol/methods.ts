import { fsMethods } from './fs.js';
import type { Answer, MethodSpec } from './method-spec.js';
import { configHttpMethods } from './methods-0171.js';
import { processMethods } from './process.js';

/**
 * Every request method a client may call after `initialize`, by wire name: the one place a method
 * is declared. The server's handler table must cover exactly these names (MethodHandlers), and
 * the client's `request` accepts only these names with their request shapes.
 */
export const methods = { ...processMethods, ...fsMethods, ...configHttpMethods };

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type ProcessMethodName = keyof typeof processMethods;
export type FsMethodName = keyof typeof fsMethods;
export type ConfigHttpMethodName = keyof typeof configHttpMethods;

/** The params a handler receives, validated. */
export type MethodParams<M extends MethodName> = Methods[M] extends MethodSpec<infer P, unknown, unknown> ? P : never;
/** The params a client sends. */
export type MethodRequest<M extends MethodName> = Methods[M] extends MethodSpec<unknown, infer Q, unknown> ? Q : never;
/** The result a client receives. */
export type MethodResult<M extends MethodName> = Methods[M] extends MethodSpec<unknown, unknown, infer R> ? R : never;

export type MethodHandler<Ctx, M extends MethodName> = (ctx: Ctx, params: MethodParams<M>) => Answer<MethodResult<M>>;
/** One handler per method of `Names`; a name missing or misspelled fails typecheck. */
export type MethodHandlers<Ctx, Names extends MethodName = MethodName> = { readonly [M in Names]: MethodHandler<Ctx, M> };
