// A web app on openid-client (Node), unmodified, signing a person in through Tessera
// with the authorization code flow and PKCE (tests/e2e/test_openid_client_signin.py).
//
// Input (JSON on stdin): {"issuer", "client_id", "client_secret", "scope"}.
// It discovers the issuer, listens on 127.0.0.1 (an ephemeral port), prints one JSON
// line {"authorization_url"} for the browser, and waits for the callback; there it
// redeems the code (state, iss, PKCE, ID token signature, nonce, at_hash checked by
// openid-client), reads /oauth/userinfo and prints one JSON line
// {"claims", "userinfo", "token_type", "scope"} before it exits. Errors: one line on
// stderr and exit status 1.
import http from 'node:http';
import * as client from 'openid-client';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function fail(error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}

async function main() {
  const input = await readStdin();
  // The local runner serves plain HTTP on 127.0.0.1; openid-client asks for HTTPS
  // unless told otherwise.
  const config = await client.discovery(new URL(input.issuer), input.client_id,
    input.client_secret, undefined, { execute: [client.allowInsecureRequests] });
  const verifier = client.randomPKCECodeVerifier();
  const challenge = await client.calculatePKCECodeChallenge(verifier);
  const state = client.randomState();
  const nonce = client.randomNonce();

  const server = http.createServer(async (req, res) => {
    const current = new URL(req.url, redirectUri);
    if (current.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      res.writeHead(200, { 'Content-Type': 'text/html' })
        .end('<!doctype html><title>signed in</title><p>Signed in.</p>');
      process.stdout.write(JSON.stringify({ claims, userinfo, token_type: tokens.token_type,
        scope: tokens.scope }) + '\n');
      server.close();
    } catch (error) {
      res.writeHead(500).end();
      fail(error);
    }
  });
  let redirectUri;
  server.listen(0, '127.0.0.1', () => {
    redirectUri = `http://127.0.0.1:${server.address().port}/callback`;
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: input.scope, state, nonce,
      code_challenge: challenge, code_challenge_method: 'S256',
      // Always show the consent page: an earlier sign-in of the same run may have
      // remembered the consent.
      prompt: 'consent',
    });
    process.stdout.write(JSON.stringify({ authorization_url: url.href }) + '\n');
  });
}

main().catch(fail);
