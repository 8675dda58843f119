// What oauth4webapi makes of Tessera's metadata and access tokens, run by
// tests/api/test_node_relying_party.py. Reads one JSON object on stdin:
//   {"issuer", "discovery": <the metadata document>,
//    "jwks"?, "access_token"?, "audience"?, "now"?}
// processes the document as a client does after fetching it (issuer check,
// RFC 8414 §3.3 / OIDC Discovery §4.3), then, if a token is given, validates it
// as an RFC 9068 resource server does, with the JWKS from the document's
// jwks_uri. Prints {"issuer", "metadata", "claims"?} or exits 1 with the
// library's error code on stderr.
import * as oauth from 'oauth4webapi'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))

try {
  const response = new Response(JSON.stringify(input.discovery), {
    status: 200, headers: { 'content-type': 'application/json' },
  })
  const as = await oauth.processDiscoveryResponse(new URL(input.issuer), response)
  const out = { issuer: as.issuer, metadata: as }
  if (input.access_token) {
    const options = {
      // the JWKS, as if fetched from the document's jwks_uri
      [oauth.customFetch]: async (url) => {
        if (url !== as.jwks_uri) throw new Error(`unexpected fetch of ${url}`)
        return new Response(JSON.stringify(input.jwks), {
          status: 200, headers: { 'content-type': 'application/json' },
        })
      },
      // the tests' clock is not the wall clock
      [oauth.clockSkew]: input.now - Math.floor(Date.now() / 1000),
    }
    const request = new Request('https://resource.example/api', {
      headers: { authorization: `Bearer ${input.access_token}` },
    })
    out.claims = await oauth.validateJwtAccessToken(as, request, input.audience, options)
  }
  process.stdout.write(JSON.stringify(out))
} catch (err) {
  process.stderr.write(`${err.code ?? err.name}: ${err.message}\n`)
  process.exit(1)
}
