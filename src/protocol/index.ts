export * from './errors.js';
export * from './envelope.js';
export * from './initialize.js';
export * from './process.js';
export * from './paths.js';
export * from './base64.js';
export * from './os-error.js';
export * from './notifications.js';
export { parseParams } from './validate.js';
