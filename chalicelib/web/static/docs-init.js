// GET /docs: start Swagger UI on the document named by #swagger-ui's data-url
// (a file of its own: the page's CSP allows no inline script).
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-url"),
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    // Nothing leaves this origin: no validator badge (it would call validator.swagger.io).
    validatorUrl: null,
  });
});
