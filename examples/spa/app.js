// The Tessera SPA example: oidc-client-ts (global `oidc`, its browser bundle) signs
// the user in with the authorization code flow and PKCE, then the page calls
// /v1/me with the access token. Everything crosses origins: Tessera answers CORS
// to the web origins registered for the client (its redirect URIs' origins).
//
// Settings: ?authority=URL&client_id=ID on index.html (defaults: `make run` and the
// demo seed's `spa` client), remembered in sessionStorage for the callback page.
"use strict";

const KEY = "tessera-spa-settings";
const query = new URLSearchParams(location.search);
const saved = JSON.parse(sessionStorage.getItem(KEY) || "{}");
const settings = {
  authority: query.get("authority") || saved.authority || "http://127.0.0.1:8000",
  client_id: query.get("client_id") || saved.client_id || "spa",
};
sessionStorage.setItem(KEY, JSON.stringify(settings));

const manager = new oidc.UserManager({
  authority: settings.authority,
  client_id: settings.client_id,
  redirect_uri: location.origin + "/callback.html",
  post_logout_redirect_uri: location.origin + "/",
  response_type: "code",          // oidc-client-ts always adds PKCE (S256)
  scope: "openid profile email",
  userStore: new oidc.WebStorageStateStore({ store: window.sessionStorage }),
});

function showError(err) {
  document.getElementById("error").textContent = "Error: " + (err && err.message || err);
}

async function showMe(user) {
  const response = await fetch(settings.authority + "/v1/me", {
    headers: { Authorization: "Bearer " + user.access_token },
  });
  if (!response.ok) {
    throw new Error("/v1/me answered " + response.status);
  }
  document.getElementById("me").textContent = JSON.stringify(await response.json(), null, 2);
  document.getElementById("signin").hidden = true;
  document.getElementById("signout").hidden = false;
}

async function main() {
  if (location.pathname.endsWith("/callback.html")) {
    await manager.signinRedirectCallback();   // the code for tokens, at the token endpoint
    location.replace(location.origin + "/index.html");
    return;
  }
  document.getElementById("signin").onclick = () => manager.signinRedirect().catch(showError);
  document.getElementById("signout").onclick = () => manager.signoutRedirect().catch(showError);
  const user = await manager.getUser();
  if (user && !user.expired) {
    await showMe(user);
  }
}

main().catch(showError);
