// A real OAuth2 authorization server for Keyward's tests: oidc-provider (OpenID certified) on
// 127.0.0.1 with the client-credentials grant and token introspection, client secrets checked.
//
// Input: one JSON object on stdin,
//   {"clients": [{"client_id", "client_secret", "scope"?, "auth"?: "basic"|"post", "ttl"?: secs}]}
// Output: one JSON line on stdout once listening: {"issuer", "port", "token_url",
// "introspection_url"}. Then, beside the provider's own routes:
//   GET /api/whoami   a protected resource: 200 {"client_id","scope"} for a live bearer token,
//                     401 otherwise (what a real API does with the token a tool sends)
//   /test/redirect    307 to the token endpoint
//   GET /test/stats   {"tokens_issued": n, "last_auth": "basic"|"post"}: how many tokens the
//                     token endpoint has issued, and how the last client authenticated
// Stops when stdin closes or on SIGTERM.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

// The first line of stdin is the configuration; the end of stdin is the signal to stop.
const input = await new Promise((resolve, reject) => {
  let text = '';
  const onData = (chunk) => {
    text += chunk;
    const nl = text.indexOf('\n');
    if (nl < 0) return;
    process.stdin.off('data', onData);
    try { resolve(JSON.parse(text.slice(0, nl))); } catch (e) { reject(e); }
  };
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', onData);
});
const ttls = new Map(input.clients.map((c) => [c.client_id, c.ttl ?? 3600]));
const scopes = new Set(['openid']);
for (const c of input.clients) for (const s of (c.scope ?? '').split(' ').filter(Boolean)) scopes.add(s);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: input.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    scope: c.scope,
    token_endpoint_auth_method: c.auth === 'post' ? 'client_secret_post' : 'client_secret_basic',
  })),
  scopes: [...scopes],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: (_ctx, _token, client) => ttls.get(client.clientId) ?? 3600 },
  cookies: { keys: [randomBytes(32).toString('hex')] },
});

// This provider accepts either method from any client, so the method each issuance used is
// recorded for the tests to check instead.
let issued = 0;
let lastAuth = null;
provider.on('grant.success', (ctx) => {
  issued += 1;
  lastAuth = ctx.headers.authorization ? 'basic' : 'post';
});

const callback = provider.callback();
const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

server.on('request', async (req, res) => {
  // A token endpoint that moved: a client that follows would send its secret on (307 keeps POST).
  if (req.url === '/test/redirect') {
    res.writeHead(307, { location: `${issuer}/token` });
    return res.end();
  }
  if (req.url === '/test/stats') return json(res, 200, { tokens_issued: issued, last_auth: lastAuth });
  if (req.url === '/api/whoami') {
    const m = /^Bearer ([\x21-\x7e]+)$/.exec(req.headers.authorization ?? '');
    const token = m && (await provider.ClientCredentials.find(m[1]));
    if (!token || token.isExpired) {
      res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
      return json(res, 401, { error: 'invalid_token' });
    }
    return json(res, 200, { client_id: token.clientId, scope: token.scope ?? null });
  }
  return callback(req, res);
});

process.stdout.write(`${JSON.stringify({
  issuer,
  port,
  token_url: `${issuer}/token`,
  introspection_url: `${issuer}/token/introspection`,
})}\n`);

// Nothing to flush: the in-memory store goes with the process.
const stop = () => process.exit(0);
process.stdin.on('data', () => {});
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
