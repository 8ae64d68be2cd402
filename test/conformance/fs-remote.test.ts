import { RemoteEnvironment } from '../../src/client/remote-environment.js';
import { startServer } from '../helpers.js';
import { fsConformance } from './fs-suite.js';

fsConformance('RemoteEnvironment over WebSocket', async () => {
  const { server, url } = await startServer();
  const env = await RemoteEnvironment.connect({ url });
  return {
    env,
    cleanup: async () => {
      await env.close();
      await server.close();
    },
  };
});
