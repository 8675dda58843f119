// The benchmark's peer: node-oidc-provider (version pinned in package.json) with its
// default in-memory adapter, served on 127.0.0.1 for `python -m bench.peer`.
//
//   node --expose-gc server.mjs   prints one JSON line {"port", "node", "oidc_provider", ...}, then serves
//
// One process, one http server. Paths under /bench/ never reach the Provider:
//   POST /bench/noop            reads the form body and answers {} (Node's own HTTP cost, subtracted)
//   POST /bench/mark?sessions=K&openid=0|1
//                               a young-generation collection, the server's CPU
//                               (process.cpuUsage(), every thread of the process) read, then K
//                               fresh sessions made through the Provider's models (with the
//                               openid scope or without), another collection, and the CPU read
//                               again: the harness's measured windows run from one mark's second
//                               reading to the next mark's first, so the set-up of sessions stays
//                               outside them, and each window collects its own short-lived garbage,
//                               none of the kind measured before it (the kinds are interleaved
//                               batch by batch). Old-generation collections, rare, fall where
//                               they fall.
// Everything else is the Provider (token endpoint /token, introspection /token/introspection).
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { createRequire } from 'node:module';

import Provider from 'oidc-provider';

const require = createRequire(import.meta.url);
const PROVIDER_VERSION = require('oidc-provider/package.json').version;

const CLIENT_ID = 'bench-service';
const CLIENT_SECRET = crypto.randomBytes(32).toString('base64url');
// The one resource server: access tokens for it are JWTs signed with ES256 (oidc-provider 9
// issues JWT access tokens only for a resource indicator, RFC 8707; without one they are opaque).
const RESOURCE = 'urn:tessera:bench:api';
const SCOPE = 'api:read';
const ACCOUNT = 'bench-user';

// Two signing keys, as Tessera's key set holds: ES256 for access tokens, RS256 (2048-bit, as
// Tessera's RSA_BITS) for ID tokens: OIDC's default and Tessera's default for a client that
// registered none.
const ecKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const rsaKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const signingKeys = [
  { ...ecKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' },
  { ...rsaKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' },
];

const provider = new Provider('http://127.0.0.1/bench-peer', {
  // No adapter: the default in-memory one (an LRU of 1,000 entries).
  jwks: { keys: signingKeys },
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    // authorization_code is how a real client would get its first refresh token; the
    // harness makes sessions through the models instead (see makeSession).
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['https://rp.bench.invalid/cb'],
    id_token_signed_response_alg: 'RS256',
  }],
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  scopes: ['openid', 'offline_access', SCOPE],
  // The defaults, and amr (which Tessera's ID tokens carry); acr is kept only with acrValues.
  claims: { acr: null, amr: null, auth_time: null, iss: null, sid: null, openid: ['sub'] },
  acrValues: ['urn:tessera:acr:pwd', 'urn:tessera:acr:mfa'],
  findAccount: async (_ctx, accountId) => ({ accountId, claims: async () => ({ sub: accountId }) }),

  // Every refresh rotates the refresh token (the default rotates a confidential client's only
  // after 70% of its lifetime); Tessera rotates every time.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 300,
    ClientCredentials: 300,
    IdToken: 300,
    RefreshToken: 24 * 60 * 60,
    Grant: 24 * 60 * 60,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

// A session as the authorization code grant would leave it, made through the Provider's own
// models (Grant, RefreshToken, AccessToken), so that the refresh_token grant and introspection
// run their real paths (Grant lookup, account, rotation) against real stored objects:
// - a Grant for the account and client, with the resource server's scope, and with `openid`
//   (an OIDC scope of the grant) for a session of the openid sort;
// - a RefreshToken of that grant, bound to the resource, so that its refreshes issue ES256 JWT
//   access tokens as Tessera's do. Its scope holds `openid` for the openid sort: then the
//   refresh_token grant (lib/actions/grants/refresh_token.js, issueIdToken) answers an ID
//   token too, signed with the client's id_token_signed_response_alg (RS256), and carrying
//   auth_time, acr, amr and sid as Tessera's does; without `openid`, no ID token;
// - an opaque AccessToken of the same grant (oidc-provider introspects only opaque tokens:
//   JWT access tokens get unsupported_token_type at its introspection endpoint).
async function makeSession(openid) {
  const client = await provider.Client.find(CLIENT_ID);
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addResourceScope(RESOURCE, SCOPE);
  if (openid) grant.addOIDCScope('openid');
  const grantId = await grant.save();
  const common = { accountId: ACCOUNT, client, grantId, gty: 'authorization_code' };
  const signedIn = {
    authTime: Math.floor(Date.now() / 1000),
    acr: 'urn:tessera:acr:pwd',
    amr: ['pwd'],
    sid: crypto.randomUUID(),
  };
  // The claims a sign-in of Tessera puts in every ID token (an OIDC client would ask for them
  // with the claims parameter; the refresh token carries that request).
  const claims = openid ? { id_token: { auth_time: null, acr: null, amr: null } } : undefined;
  const refreshToken = await new provider.RefreshToken({
    ...common, ...signedIn, claims, resource: RESOURCE, scope: openid ? `openid ${SCOPE}` : SCOPE,
  }).save();
  const accessToken = await new provider.AccessToken({ ...common, scope: SCOPE }).save();
  return { refresh_token: refreshToken, access_token: accessToken };
}

function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

function send(res, body) {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function control(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  if (url.pathname === '/bench/noop') {
    new URLSearchParams(Buffer.concat(chunks).toString());
    send(res, {});
    return;
  }
  if (url.pathname === '/bench/mark') {
    const openid = url.searchParams.get('openid') === '1';
    global.gc({ type: 'minor' });
    const before = cpuMicros();
    const sessions = [];
    for (let i = 0; i < Number(url.searchParams.get('sessions') ?? 0); i += 1) {
      sessions.push(await makeSession(openid));
    }
    global.gc({ type: 'minor' });
    send(res, { cpu_before_us: before, cpu_after_us: cpuMicros(), sessions });
    return;
  }
  res.writeHead(404).end();
}

const callback = provider.callback();
const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.url.startsWith('/bench/')) {
    control(req, res).catch((err) => {
      console.error(err);
      res.writeHead(500).end();
    });
  } else {
    callback(req, res);
  }
});

// Errors the Provider renders to clients are expected only if something is wrong: say so.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
provider.on('grant.error', (_ctx, err) => console.error('grant.error', err.message, err.error_description ?? ''));

server.listen(0, '127.0.0.1', () => {
  const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${JSON.stringify({
    port: server.address().port,
    node: process.version,
    oidc_provider: PROVIDER_VERSION,
    pinned: pkg.dependencies['oidc-provider'],
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    resource: RESOURCE,
    scope: SCOPE,
    account: ACCOUNT,
    token_path: '/token',
    introspection_path: '/token/introspection',
  })}\n`);
});

// The harness closes stdin to stop the server.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
