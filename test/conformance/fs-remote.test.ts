import { remoteFixture } from '../helpers.js';
import { fsConformance } from './fs-suite.js';

fsConformance('RemoteEnvironment over WebSocket', () => remoteFixture());
