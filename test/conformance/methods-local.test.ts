import { LocalEnvironment } from '../../src/local/local-environment.js';
import { methodsConformance } from './methods-suite.js';

methodsConformance('LocalEnvironment', async ({ environment }) => {
  const env = new LocalEnvironment(environment);
  return { env, cleanup: () => env.close() };
});
