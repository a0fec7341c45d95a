// A real OpenID Provider for the tests: node-oidc-provider (OpenID Certified), on 127.0.0.1,
// port 0. Prints one line `OIDC_PROVIDER_URL=http://127.0.0.1:PORT` on stdout once it answers.
//
// Features: authorization code + PKCE (required), refresh tokens (every client allowed the
// refresh_token grant gets one), RP-Initiated Logout, Back-Channel Logout, the dev
// interactions (login form: any password for a seeded user; consent form).
//
// Seeded users (login name = sub): alice (org acme, region eu), bob (org globex, region us).
//
// A test-only admin hook (never in a real provider), JSON answers:
//   POST /__admin/client            body: client metadata (JSON); registers or replaces a client
//   POST /__admin/disable?sub=...   the user can no longer log in or refresh (invalid_grant)
//   POST /__admin/enable?sub=...
//   POST /__admin/end-session?sub=...  ends the user's provider sessions, sending a back-channel
//                                      logout token to each client's backchannel_logout_uri;
//                                      answers {"sessions": n, "notified": [...], "errors": [...]}
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const USERS = {
  alice: { email: 'alice@acme.test', email_verified: true, name: 'Alice', org: 'acme', region: 'eu' },
  bob: { email: 'bob@globex.test', email_verified: true, name: 'Bob', org: 'globex', region: 'us' },
};
const disabled = new Set();

// One Map for every model: the tests' provider lives minutes, expiry is the provider's business
// (it checks `exp` on what it finds). A Map (not the library's LRU) so the admin hook can list sessions.
const storage = new Map();
const grants = new Map(); // grantId -> Set of keys

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload) {
    const key = this.key(id);
    storage.set(key, payload);
    if (this.model === 'Session') storage.set(`sessionUid:${payload.uid}`, id);
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(key);
    }
  }

  async find(id) {
    return storage.get(this.key(id));
  }

  async findByUid(uid) {
    return this.find(storage.get(`sessionUid:${uid}`));
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const payload = storage.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) storage.delete(key);
    grants.delete(grantId);
  }
}

async function findAccount(_ctx, id) {
  if (!Object.hasOwn(USERS, id) || disabled.has(id)) return undefined;
  return {
    accountId: id,
    async claims() {
      return { sub: id, ...USERS[id] };
    },
  };
}

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };

const configuration = {
  adapter: MapAdapter,
  findAccount,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'org', 'region'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  // The id_token carries the scopes' claims (the test app maps org and region from it).
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  // The library refuses to call special-use addresses (SSRF protection); the test apps live on
  // 127.0.0.1, so its back-channel requests go out without that check (test-only).
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Refresh tokens do not rotate: a test can use one twice.
  rotateRefreshToken: false,
  ttl: { AccessToken: 300, IdToken: 300, RefreshToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
};

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function endSessions(provider, sub) {
  const result = { sessions: 0, notified: [], errors: [] };
  for (const [key, payload] of [...storage.entries()]) {
    if (!key.startsWith('Session:') || payload.accountId !== sub) continue;
    result.sessions += 1;
    for (const [clientId, authorization] of Object.entries(payload.authorizations ?? {})) {
      const client = await provider.Client.find(clientId);
      if (client?.backchannelLogoutUri) {
        try {
          await client.backchannelLogout(sub, authorization.sid);
          result.notified.push(clientId);
        } catch (err) {
          result.errors.push(`${clientId}: ${err.message}`);
        }
      }
      if (authorization.grantId) await new MapAdapter('Grant').revokeByGrantId(authorization.grantId);
    }
    storage.delete(key);
  }
  return result;
}

async function admin(provider, req, res, url) {
  if (req.method !== 'POST') return json(res, 405, { error: 'use POST' });
  const sub = url.searchParams.get('sub');
  switch (url.pathname) {
    case '/__admin/client': {
      const metadata = JSON.parse(await readBody(req));
      await new MapAdapter('Client').upsert(metadata.client_id, metadata);
      return json(res, 200, { client_id: metadata.client_id });
    }
    case '/__admin/disable':
      disabled.add(sub);
      return json(res, 200, { disabled: sub });
    case '/__admin/enable':
      disabled.delete(sub);
      return json(res, 200, { enabled: sub });
    case '/__admin/end-session':
      return json(res, 200, await endSessions(provider, sub));
    default:
      return json(res, 404, { error: 'no such admin hook' });
  }
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  provider.on('backchannel.error', (_ctx, err) => console.error('oidc-provider backchannel.error:', err.message));
  const callback = provider.callback();
  server.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname.startsWith('/__admin/')) {
      admin(provider, req, res, url).catch((err) => json(res, 400, { error: String(err.message) }));
      return;
    }
    callback(req, res);
  });
  console.log(`OIDC_PROVIDER_URL=${issuer}`);
});

// The tests stop it with SIGTERM (or close its stdin when they die).
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
