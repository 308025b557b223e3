// An OpenID Provider (the certified `oidc-provider` package) for the test suite, on 127.0.0.1.
//
// node provider.mjs <port> <client_id> <client_secret> <redirect_uri>
//
// The person who "signs in" is whoever the test last posted to /test/account; the login and
// consent screens are answered at once for them, so a test drives the whole Authorization
// Code flow (discovery, PKCE, nonce, an RS256 ID token from the JWKS) with plain HTTP.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import http from "node:http";

import Provider from "oidc-provider";

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const signing = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
let person = { sub: "person-1", email: "person@example.com", email_verified: true, name: "Person" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_post",
  }],
  jwks: { keys: [{ ...signing.export({ format: "jwk" }), kid: "test-key", use: "sig", alg: "RS256" }] },
  cookies: { keys: [randomBytes(16).toString("hex")] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  scopes: ["openid", "email", "profile"],
  pkce: { required: () => true },
  // Like Google: the ID token itself carries email and email_verified.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ ...person, sub }),
  }),
});

async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === "login") {
    await provider.interactionFinished(req, res, { login: { accountId: person.sub } },
      { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    if (req.method === "POST" && req.url === "/test/account") {
      let body = "";
      for await (const chunk of req) body += chunk;
      person = JSON.parse(body);
      res.writeHead(204).end();
    } else if (req.url.startsWith("/interaction/")) {
      await interact(req, res);
    } else {
      callback(req, res);
    }
  } catch (error) {
    res.writeHead(500, { "content-type": "text/plain" }).end(String(error));
  }
}).listen(Number(port), "127.0.0.1", () => console.log(`ready ${issuer}`));
