// /docs: the OpenAPI schema of serve/web.py as a plain list, without Swagger UI's CDN files.
"use strict";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// A schema's fields: an object's properties, following one $ref into components.
function fields(schema, spec) {
  if (schema && schema.$ref) {
    schema = schema.$ref.split("/").slice(1).reduce((o, k) => o[k], spec);
  }
  return Object.entries((schema && schema.properties) || {}).map(([name, prop]) => {
    const required = (schema.required || []).includes(name);
    const types = (prop.anyOf || [prop]).map((p) => p.format || p.type).filter(Boolean);
    const dflt = prop.default === undefined ? "" : ` (default ${JSON.stringify(prop.default)})`;
    return `${name}${required ? " (required)" : ""}: ${types.join(" | ")}${dflt}` +
      (prop.description ? ` — ${prop.description}` : "");
  });
}

async function render() {
  const box = document.getElementById("api");
  const spec = await (await fetch("/openapi.json")).json();
  box.replaceChildren(el("p", `${spec.info.title} ${spec.info.version}: ${spec.info.summary || ""}`));
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      box.append(el("h2", `${method.toUpperCase()} ${path}`));
      if (op.description) box.append(el("pre", op.description));
      const body = op.requestBody && op.requestBody.content;
      for (const [type, media] of Object.entries(body || {})) {
        box.append(el("p", `request body, ${type}:`, "small"));
        const list = el("ul");
        for (const line of fields(media.schema, spec)) list.append(el("li", line));
        box.append(list);
      }
      const codes = Object.entries(op.responses || {}).map(([c, r]) => `${c} ${r.description}`);
      box.append(el("p", `responses: ${codes.join("; ")}`, "small"));
    }
  }
}

render().catch((e) => {
  document.getElementById("api").textContent = `could not read /openapi.json (${e})`;
});
