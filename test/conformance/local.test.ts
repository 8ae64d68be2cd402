import { LocalEnvironment } from '../../src/local/local-environment.js';
import { processConformance } from './process-suite.js';

processConformance('LocalEnvironment', async () => {
  const env = new LocalEnvironment({ serverEnv: { ...process.env, MY_API_KEY: 'k', MY_SECRET: 's', MY_TOKEN: 't', NORMAL_VAR: 'n' } });
  return { env, cleanup: () => env.close() };
});
