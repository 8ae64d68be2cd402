import type { ClientOptions } from '../client/exec-server-client.js';
import { RemoteEnvironment } from '../client/remote-environment.js';
import { readToken } from './token.js';

/** `--url` and `--token-file` (commander fills `url` from CORDON_URL when the flag is absent). */
export interface ConnectionFlags {
  url?: string;
  tokenFile?: string;
}

/** The bearer token: `--token-file`, else the CORDON_TOKEN environment variable, else none. */
export async function resolveToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (tokenFile) return readToken(tokenFile);
  const token = env.CORDON_TOKEN?.trim();
  return token ? token : undefined;
}

/** Connects to `flags.url`; a refusal for want of a (valid) token says how to give one. */
export async function connectRemote(
  flags: ConnectionFlags & { url: string },
  clientName: string,
  extra: Partial<ClientOptions> = {},
): Promise<RemoteEnvironment> {
  const token = await resolveToken(flags.tokenFile);
  try {
    return await RemoteEnvironment.connect({ url: flags.url, clientName, ...(token ? { token } : {}), ...extra });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/HTTP 401/.test(message)) {
      const source = flags.tokenFile ? `the token in ${flags.tokenFile}` : token ? 'the token in CORDON_TOKEN' : undefined;
      throw new Error(`${flags.url}: ${message}${source ? ` (${source} is wrong)` : ' (give it with --token-file FILE or CORDON_TOKEN)'}`);
    }
    throw new Error(`${flags.url}: ${message}`);
  }
}
