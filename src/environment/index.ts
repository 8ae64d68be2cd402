export * from './types.js';
export * from './permissions.js';
