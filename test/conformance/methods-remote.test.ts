import { remoteFixture } from '../helpers.js';
import { methodsConformance } from './methods-suite.js';

methodsConformance('RemoteEnvironment over WebSocket', ({ environment }) => remoteFixture({ environment }));
