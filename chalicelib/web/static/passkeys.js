// Passkeys (SPEC §11; W3C WebAuthn Level 2): the ceremonies run here, in the
// browser, since WebAuthn is a JavaScript API. Inlined after site.js on pages
// that offer passkeys (Layout.passkeys), under the same nonce-only CSP, with
// connect-src 'self' for the options. Without a WebAuthn-capable browser (or on
// an IP address) the passkey controls stay hidden and the page works as before.
//
//   [data-passkey=signin]   a button: fetch request options (POST data-options,
//                           the page's CSRF token), navigator.credentials.get(),
//                           then submit a form to data-action with the assertion.
//   form[data-passkey=register]  on submit: fetch creation options (POST
//                           data-options), navigator.credentials.create(), put the
//                           credential in the form's "credential" field, submit.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }
  // WebAuthn takes no IP address as relying party id (a local runner on 127.0.0.1).
  if (/^[0-9.]+$|^\[/.test(location.hostname)) { return; }

  function toBytes(text) {
    var s = text.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      var d = { type: c.type, id: toBytes(c.id) };
      if (c.transports) { d.transports = c.transports; }
      return d;
    });
  }

  // The credential as JSON (WebAuthn L3 toJSON where the browser has it).
  function asJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: toText(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(r.clientDataJSON) }
    };
    if (cred.authenticatorAttachment) { out.authenticatorAttachment = cred.authenticatorAttachment; }
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) { out.response.transports = r.getTransports(); }
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) { out.response.userHandle = toText(r.userHandle); }
    }
    return out;
  }

  function options(url, fields) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString()
    }).then(function (answer) {
      if (!answer.ok) { throw new Error("options " + answer.status); }
      return answer.json();
    });
  }

  function say(box, text) {
    var note = box.querySelector(".passkey-error");
    if (note) { note.textContent = text; note.hidden = !text; }
  }

  function post(action, fields) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = action;
    form.hidden = true;
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = fields[name];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  var FAILED = "The passkey did not work. Try again, or use another way.";

  Array.prototype.forEach.call(document.querySelectorAll("[data-passkey=signin]"), function (box) {
    var button = box.querySelector("button");
    box.hidden = false;
    button.addEventListener("click", function () {
      var csrf = box.getAttribute("data-csrf");
      button.disabled = true;
      say(box, "");
      options(box.getAttribute("data-options"), { csrf: csrf }).then(function (o) {
        var publicKey = {
          challenge: toBytes(o.challenge), timeout: o.timeout, rpId: o.rpId,
          userVerification: o.userVerification, allowCredentials: descriptors(o.allowCredentials)
        };
        return navigator.credentials.get({ publicKey: publicKey });
      }).then(function (cred) {
        post(box.getAttribute("data-action"), {
          csrf: csrf, next: box.getAttribute("data-next"), credential: JSON.stringify(asJSON(cred))
        });
      }).catch(function () {
        button.disabled = false;
        say(box, FAILED);
      });
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll("form[data-passkey=register]"), function (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var csrf = form.elements.csrf.value;
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      say(form, "");
      options(form.getAttribute("data-options"), { csrf: csrf }).then(function (o) {
        var publicKey = {
          rp: o.rp, challenge: toBytes(o.challenge), timeout: o.timeout,
          user: { id: toBytes(o.user.id), name: o.user.name, displayName: o.user.displayName },
          pubKeyCredParams: o.pubKeyCredParams, attestation: o.attestation,
          authenticatorSelection: o.authenticatorSelection,
          excludeCredentials: descriptors(o.excludeCredentials)
        };
        return navigator.credentials.create({ publicKey: publicKey });
      }).then(function (cred) {
        form.elements.credential.value = JSON.stringify(asJSON(cred));
        form.submit();
      }).catch(function () {
        button.disabled = false;
        say(form, FAILED);
      });
    });
  });
})();
