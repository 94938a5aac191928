// The baseline: plain node-oidc-provider with its in-memory adapter and one static client,
// issuing the same ES256 JWT access tokens as Postern. Run as a child process by run.ts:
//   PORT=... BASELINE_CLIENT_SECRET=... node test/bench/baseline-server.ts
import { randomBytes } from 'node:crypto';

import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { errors, type Configuration } from 'oidc-provider';

import { API, SERVICE_CLIENT } from './scenario.ts';

async function signingKey(alg: 'ES256' | 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `bench-${alg.toLowerCase()}`, alg, use: 'sig' };
}

function configuration(clientSecret: string, keys: JWK[]): Configuration {
  const ttl = API.tokenTtlSeconds;
  return {
    clients: [
      {
        client_id: SERVICE_CLIENT.id,
        client_secret: clientSecret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys: keys as never },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API.resource,
        getResourceServerInfo(_ctx, resource) {
          if (resource !== API.resource) throw new errors.InvalidTarget();
          return {
            scope: API.scopes,
            audience: API.resource,
            accessTokenFormat: 'jwt',
            accessTokenTTL: ttl,
            jwt: { sign: { alg: API.alg } },
          };
        },
      },
    },
    // Numbers, not the default functions: those print a notice on every call, on the hot path.
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      IdToken: ttl,
      Interaction: ttl,
      Session: ttl,
      Grant: ttl,
      RefreshToken: ttl,
    },
  };
}

const port = Number(process.env.PORT);
const clientSecret = process.env.BASELINE_CLIENT_SECRET ?? '';
if (!Number.isInteger(port) || port <= 0 || clientSecret.length < 32) {
  console.error('baseline-server: set PORT and BASELINE_CLIENT_SECRET (32+ characters)');
  process.exit(2);
}
const keys = [await signingKey('RS256'), await signingKey('ES256')];
const provider = new Provider(`http://127.0.0.1:${port}`, configuration(clientSecret, keys));
const server = provider.listen(port, '127.0.0.1');
// As Postern's server: keep-alive sockets are not cut by the server during a phase.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
const stop = () => {
  server.close();
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
