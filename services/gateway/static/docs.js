// The /docs page: Swagger UI (vendored under static/vendor/swagger-ui) over /openapi.json. "Try
// it out" calls this same gateway, with the WebChat session cookie when logged in.

window.SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: false,
  withCredentials: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
