// The API reference: renders /api/openapi.json (served by this gateway) as
// readable HTML. No external viewer, so it works offline.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const refName = (ref) => ref.split("/").pop();

/// A compact, human-readable form of a JSON schema.
function typeOf(s, depth = 0) {
  if (!s) return "any";
  if (s.$ref) return refName(s.$ref);
  if (s.allOf) return s.allOf.map((x) => typeOf(x, depth)).join(" & ");
  if (s.oneOf) return s.oneOf.map((x) => typeOf(x, depth)).join(" | ");
  if (s.anyOf) return s.anyOf.map((x) => typeOf(x, depth)).join(" | ");
  let t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "any";
  if (t.includes("array") && s.items) t = t.replace("array", typeOf(s.items, depth) + "[]");
  if (t.includes("object") && s.properties && depth < 2) {
    t = "{ " + Object.entries(s.properties).map(([k, v]) => `${k}: ${typeOf(v, depth + 1)}`).join(", ") + " }";
  } else if (t.includes("object") && s.additionalProperties && typeof s.additionalProperties === "object") {
    t = t.replace("object", `map<string, ${typeOf(s.additionalProperties, depth + 1)}>`);
  }
  if (s.format) t += ` (${s.format})`;
  return t;
}

function contentList(content) {
  if (!content) return [];
  return Object.entries(content).map(([type, media]) =>
    el("div", {}, el("code", {}, type), " ", el("span", { class: "muted" }, media.schema ? typeOf(media.schema) : "")));
}

function renderOperation(path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  const params = (op.parameters || []).map((p) => el("tr", {},
    el("td", {}, el("code", {}, p.name), p.required ? " *" : ""),
    el("td", {}, p.in),
    el("td", {}, typeOf(p.schema)),
    el("td", {}, p.description || "")));
  const responses = Object.entries(op.responses || {}).map(([code, r]) => el("tr", {},
    el("td", {}, el("b", {}, code)),
    el("td", {}, r.description || ""),
    el("td", {}, contentList(r.content))));
  const body = el("div", { class: "body" },
    op.summary ? el("p", {}, op.summary) : null,
    op.description ? el("p", { class: "muted" }, op.description) : null,
    op.security && op.security.length ? el("p", {}, "🔒 Jeton requis (Bearer).") : el("p", { class: "muted" }, "Sans jeton."),
    params.length ? [el("h3", {}, "Paramètres"), el("div", { class: "table-wrap" }, el("table", { class: "list" },
      el("thead", {}, el("tr", {}, el("th", {}, "Nom"), el("th", {}, "Où"), el("th", {}, "Type"), el("th", {}, "Description"))),
      el("tbody", {}, params)))] : null,
    op.requestBody ? [el("h3", {}, "Corps de la requête"), contentList(op.requestBody.content)] : null,
    el("h3", {}, "Réponses"),
    el("div", { class: "table-wrap" }, el("table", { class: "list" }, el("tbody", {}, responses))));
  return el("details", { class: "op", id },
    el("summary", {}, el("span", { class: "method " + method }, method), el("span", { class: "path" }, path),
      el("span", { class: "muted" }, op.summary || "")),
    body);
}

function renderSchema(name, s) {
  const rows = Object.entries(s.properties || {}).map(([k, v]) => el("tr", {},
    el("td", {}, el("code", {}, k), (s.required || []).includes(k) ? " *" : ""),
    el("td", {}, typeOf(v, 1)),
    el("td", {}, v.description || "")));
  return el("details", { class: "op", id: "schema-" + name },
    el("summary", {}, el("b", {}, name), el("span", { class: "muted" }, s.description || "")),
    el("div", { class: "body" }, rows.length
      ? el("div", { class: "table-wrap" }, el("table", { class: "list" }, el("tbody", {}, rows)))
      : el("pre", { class: "schema" }, JSON.stringify(s, null, 2))));
}

async function main() {
  let doc;
  try {
    const resp = await fetch("/api/openapi.json");
    doc = await resp.json();
  } catch (e) {
    $("loading").textContent = "Impossible de charger /api/openapi.json : " + e.message;
    return;
  }
  $("loading").remove();
  $("title").textContent = `${doc.info.title} ${doc.info.version} — OpenAPI ${doc.openapi}`;
  $("description").textContent = doc.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || "autres";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, op]);
    }
  }
  const tagInfo = new Map((doc.tags || []).map((t) => [t.name, t.description || ""]));
  const ops = $("operations");
  for (const [tag, list] of byTag) {
    ops.append(el("div", { class: "card", id: "tag-" + tag },
      el("h2", {}, tag), el("p", { class: "muted" }, tagInfo.get(tag) || ""),
      list.map(([p, m, op]) => renderOperation(p, m, op))));
    $("toc").append(el("div", {}, el("a", { href: "#tag-" + tag }, tag), ` (${list.length})`));
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  $("schemas").append(...Object.entries(schemas).map(([k, v]) => renderSchema(k, v)));
}

document.addEventListener("DOMContentLoaded", main);
