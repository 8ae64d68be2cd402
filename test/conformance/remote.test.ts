import { remoteFixture } from '../helpers.js';
import { processConformance } from './process-suite.js';

processConformance('RemoteEnvironment over WebSocket', () =>
  remoteFixture({ environment: { serverEnv: { ...process.env, MY_API_KEY: 'k', MY_SECRET: 's', MY_TOKEN: 't', NORMAL_VAR: 'n' } } }),
);
