/* The API reference page: Swagger UI (vendored) rendering this API's own OpenAPI document.
 * Loaded from /v1/docs, so "openapi.json" is /v1/openapi.json on the same origin (behind a stage
 * prefix too). No other host is ever asked: the online validator is off, and the page's
 * Content-Security-Policy would refuse it anyway. */
(function () {
  "use strict";
  function start() {
    window.ui = SwaggerUIBundle({
      url: new URL("openapi.json", document.baseURI).href,
      dom_id: "#api",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      docExpansion: "list",
      defaultModelsExpandDepth: 0,
      displayOperationId: true,
      filter: true,
      persistAuthorization: false
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
