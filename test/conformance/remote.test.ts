import { RemoteEnvironment } from '../../src/client/remote-environment.js';
import { startServer } from '../helpers.js';
import { processConformance } from './process-suite.js';

processConformance('RemoteEnvironment over WebSocket', async () => {
  const { server, url } = await startServer({
    environment: { serverEnv: { ...process.env, MY_API_KEY: 'k', MY_SECRET: 's', MY_TOKEN: 't', NORMAL_VAR: 'n' } },
  });
  const env = await RemoteEnvironment.connect({ url });
  return {
    env,
    cleanup: async () => {
      await env.close();
      await server.close();
    },
  };
});
