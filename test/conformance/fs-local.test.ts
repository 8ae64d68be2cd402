import { LocalEnvironment } from '../../src/local/local-environment.js';
import { fsConformance } from './fs-suite.js';

fsConformance('LocalEnvironment', async () => {
  const env = new LocalEnvironment();
  return { env, cleanup: () => env.close() };
});
