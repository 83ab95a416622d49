// Foxflow dashboard: plain JavaScript, no framework, no network beyond this
// origin. The token lives in sessionStorage (this tab only) and every call
// sends it as a Bearer header; live progress is read from the events stream
// with fetch + ReadableStream (EventSource cannot send a header).
"use strict";

const TOKEN_KEY = "foxflow.token";
const TYPE_LABELS = {
  entreprises: "Entreprises", categories: "Catégories", sous_categories: "Sous-catégories", villes: "Villes",
};
const STATUS_LABELS = {
  pending: "En attente", processing: "En cours", success: "Réussi", partial: "Partiel", error: "Erreur",
  cancelled: "Annulé", running: "En cours", completed: "Terminé",
};
const TARGET_LABELS = {
  entreprise: "Entreprises", prolocalisation: "Pages (prolocalisations)", categorie: "Catégories",
  sous_categorie: "Sous-catégories", ville: "Villes",
};
const FINAL = new Set(["success", "partial", "error", "cancelled"]);
// Browsers allow about six connections per host over HTTP/1.1: keep some for
// ordinary requests, follow the other running jobs by refreshing the list.
const MAX_STREAMS = 3;
const PER_PAGE = 20;
const ERRORS_PER_PAGE = 25;

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat("fr-FR");
const n = (v) => (v === null || v === undefined ? "—" : fmt.format(v));
const dateFmt = new Intl.DateTimeFormat("fr-FR", { dateStyle: "short", timeStyle: "medium" });
const when = (s) => (s ? dateFmt.format(new Date(s)) : "—");

const state = {
  view: null,
  importsPage: 1,
  errorsPage: 1,
  warningsPage: 1,
  changesPage: 1,
  batchesPage: 1,
  jobId: null,
  streams: new Map(), // job id -> AbortController
  timers: [],
};

// ---------------------------------------------------------------------------
// API access
// ---------------------------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY); }

class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error;
    super(e ? e.message : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : "http_" + status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: "Bearer " + token() });
  const resp = await fetch(path, Object.assign({}, options, { headers }));
  if (resp.status === 401) {
    signOut("Votre jeton n’est plus valide : reconnectez-vous.");
    throw new ApiError(401, null);
  }
  if (!resp.ok) {
    let body = null;
    try { body = await resp.json(); } catch (_) { /* not JSON */ }
    throw new ApiError(resp.status, body);
  }
  return resp;
}

const getJson = async (path) => (await api(path)).json();

// ---------------------------------------------------------------------------
// Small DOM helpers
// ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function badge(status) {
  const b = el("span", { class: "badge", title: status }, STATUS_LABELS[status] || status);
  b.dataset.status = status;
  return b;
}

function percentOf(job) {
  if (FINAL.has(job.status)) {
    // A finished job is done whatever its counts (an empty file, an error before row 1).
    return job.status === "error" && job.total_rows > 0
      ? Math.min(100, Math.floor((job.processed_rows * 100) / job.total_rows))
      : 100;
  }
  if (!job.total_rows) return 0;
  return Math.min(99, Math.floor((job.processed_rows * 100) / job.total_rows));
}

function setBar(bar, pctEl, pct, status, label) {
  bar.dataset.status = status;
  bar.dataset.pct = String(pct);
  bar.setAttribute("aria-valuenow", String(pct));
  bar.firstElementChild.style.width = pct + "%";
  if (pctEl) pctEl.textContent = label || pct + " %";
}

function progressCell(job) {
  const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, el("span"));
  const pct = el("span", { class: "pct" });
  setBar(bar, pct, percentOf(job), job.status);
  return el("div", { class: "progress-line" }, bar, pct);
}

function flash(message, isError) {
  const f = $("flash");
  f.textContent = message;
  f.className = "notice" + (isError ? " error" : "");
  f.hidden = !message;
}

function pager(container, page, perPage, total, go) {
  container.replaceChildren();
  const pages = Math.max(1, Math.ceil(total / perPage));
  if (total === 0) return;
  container.append(
    el("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => go(page - 1) }, "‹ Précédent"),
    el("span", { class: "muted" }, `Page ${page} / ${pages} — ${n(total)} au total`),
    el("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => go(page + 1) }, "Suivant ›"),
  );
}

// ---------------------------------------------------------------------------
// Live progress: the events stream (docs/api.md), read with fetch
// ---------------------------------------------------------------------------

/// Follows one job; `onJob` gets every job frame. Falls back to polling when
/// the stream is refused or drops, and stops on a final status.
function follow(jobId, onJob) {
  if (state.streams.has(jobId)) return;
  const ctrl = new AbortController();
  state.streams.set(jobId, ctrl);
  (async () => {
    let retries = 0;
    while (!ctrl.signal.aborted) {
      let ended = false;
      try {
        const resp = await api(`/api/v1/imports/${jobId}/events`, { signal: ctrl.signal });
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let event = "message", data = "";
            for (const line of frame.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (!data) continue; // a keepalive comment
            const job = JSON.parse(data);
            if (event === "job" && job) onJob(job);
            if (event === "end") ended = true;
          }
        }
        retries = 0;
      } catch (e) {
        if (ctrl.signal.aborted || e.status === 401 || e.status === 404) break;
        retries += 1;
      }
      if (ended) break;
      // The stream closed early (server restart): poll once, then reconnect.
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** retries)));
      if (ctrl.signal.aborted) break;
      try {
        const job = await getJson(`/api/v1/imports/${jobId}`);
        onJob(job);
        if (FINAL.has(job.status)) break;
      } catch (_) { /* next turn */ }
    }
    state.streams.delete(jobId);
  })();
}

function stopStreams() {
  for (const c of state.streams.values()) c.abort();
  state.streams.clear();
}

// ---------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------

function clearTimers() {
  state.timers.forEach(clearInterval);
  state.timers = [];
}

function show(view) {
  for (const v of ["login", "view-imports", "view-job", "view-ia", "view-files"]) $(v).hidden = v !== view;
  $("nav").hidden = view === "login";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === location.hash || (a.getAttribute("href") === "#/" && view === "view-imports"));
  }
}

async function route() {
  clearTimers();
  stopStreams();
  flash("");
  if (!token()) {
    show("login");
    $("token").focus();
    return;
  }
  const hash = location.hash || "#/";
  const job = hash.match(/^#\/imports\/([0-9a-fA-F-]{36})$/);
  try {
    if (job) {
      if (state.jobId !== job[1]) { state.errorsPage = 1; state.warningsPage = 1; state.changesPage = 1; }
      state.jobId = job[1];
      show("view-job");
      await jobView(job[1]);
    } else if (hash === "#/ia") {
      show("view-ia");
      await batchesView();
      state.timers.push(setInterval(() => batchesView().catch(() => {}), 3000));
    } else if (hash === "#/files") {
      show("view-files");
      await queuesView();
      state.timers.push(setInterval(() => queuesView().catch(() => {}), 5000));
    } else {
      show("view-imports");
      await importsView();
      state.timers.push(setInterval(() => importsView().catch(() => {}), 5000));
    }
  } catch (e) {
    if (e.status !== 401) flash(e.message, true);
  }
}

async function refreshStats() {
  const s = await getJson("/api/v1/imports/stats");
  const running = (s.by_status.pending || 0) + (s.by_status.processing || 0);
  const cards = [
    [n(s.total), "imports"],
    [n(s.by_status.success), "réussis"],
    [n(s.by_status.partial), "partiels"],
    [n(s.by_status.error), "en erreur"],
    [n(running), "en cours"],
    [n(s.rows.processed), "lignes traitées"],
    [s.average_success_rate === null ? "—" : s.average_success_rate.toLocaleString("fr-FR") + " %", "taux de succès moyen"],
  ];
  $("stats").replaceChildren(...cards.map(([v, l]) => el("div", { class: "stat" }, el("b", {}, v), el("span", {}, l))));
}

async function importsView() {
  const q = new URLSearchParams({ page: state.importsPage, per_page: PER_PAGE });
  if ($("filter-status").value) q.set("status", $("filter-status").value);
  if ($("filter-type").value) q.set("import_type", $("filter-type").value);
  const [page] = await Promise.all([getJson("/api/v1/imports?" + q), refreshStats()]);
  const rows = page.items.map((job) => {
    const tr = el("tr", { class: "link", dataset: { id: job.id }, onclick: () => { location.hash = "#/imports/" + job.id; } },
      el("td", { class: "wrap" }, el("a", { href: "#/imports/" + job.id }, job.file_name), job.dry_run ? el("span", { class: "muted" }, " (simulation)") : null),
      el("td", {}, TYPE_LABELS[job.import_type] || job.import_type),
      el("td", { class: "status" }, badge(job.status)),
      el("td", { class: "progress" }, progressCell(job)),
      el("td", { class: "num created" }, n(job.created_rows)),
      el("td", { class: "num updated" }, n(job.updated_rows)),
      el("td", { class: "num errors" }, n(job.error_rows)),
      el("td", {}, when(job.created_at)),
    );
    return tr;
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "Aucun import pour l’instant : envoyez un fichier ci-dessus.")));
  $("imports-body").replaceChildren(...rows);
  pager($("imports-pager"), page.page, page.per_page, page.total, (p) => { state.importsPage = p; importsView().catch((e) => flash(e.message, true)); });
  // Live bars for the running jobs on this page.
  for (const job of page.items) {
    if (FINAL.has(job.status) || state.streams.size >= MAX_STREAMS) continue;
    follow(job.id, (j) => updateRow(j));
  }
}

function updateRow(job) {
  const tr = document.querySelector(`#imports-body tr[data-id="${job.id}"]`);
  if (!tr) return;
  tr.querySelector("td.status").replaceChildren(badge(job.status));
  const line = tr.querySelector("td.progress .progress-line");
  setBar(line.querySelector(".bar"), line.querySelector(".pct"), percentOf(job), job.status);
  tr.querySelector("td.created").textContent = n(job.created_rows);
  tr.querySelector("td.updated").textContent = n(job.updated_rows);
  tr.querySelector("td.errors").textContent = n(job.error_rows);
  if (FINAL.has(job.status)) refreshStats().catch(() => {});
}

function renderJob(job) {
  $("job-title").textContent = job.file_name;
  const st = $("job-status");
  st.textContent = STATUS_LABELS[job.status] || job.status;
  st.dataset.status = job.status;
  st.title = job.status;
  const pct = percentOf(job);
  const label = job.total_rows ? `${pct} % — ${n(job.processed_rows)} / ${n(job.total_rows)} lignes` : `${pct} %`;
  setBar($("job-progress"), $("job-pct"), pct, job.status, label);
  const counts = [
    ["Type", TYPE_LABELS[job.import_type] || job.import_type],
    ["Lignes", n(job.total_rows)],
    ["Traitées", n(job.processed_rows)],
    ["Créées", n(job.created_rows)],
    ["Mises à jour", n(job.updated_rows)],
    ["Inchangées", n(job.unchanged_rows)],
    ["En erreur", n(job.error_rows)],
    ["Avec avertissement", n(job.warning_rows)],
    ["Taux de succès", job.success_rate === null ? "—" : job.success_rate.toLocaleString("fr-FR") + " %"],
    ["Durée", job.duration_seconds === null ? "—" : job.duration_seconds.toLocaleString("fr-FR") + " s"],
    ["Simulation", job.dry_run ? "oui" : "non"],
    ["Textes IA", job.generate_ai ? "oui" : "non"],
    ["Tentatives", n(job.attempts)],
    ["Créé le", when(job.created_at)],
    ["Terminé le", when(job.completed_at)],
  ];
  $("job-counts").replaceChildren(...counts.map(([k, v]) => el("div", { dataset: { key: k } }, el("dt", {}, k), el("dd", {}, v))));
  $("job-last-error").textContent = job.last_error
    ? (job.status === "cancelled" ? "Annulé : " : "Erreur : ") + job.last_error
    : job.cancel_requested_by ? "Annulation demandée par " + job.cancel_requested_by + " : arrêt au prochain lot." : "";
  $("job-last-error").hidden = !$("job-last-error").textContent;
  $("job-unknown").hidden = !(job.unknown_columns && job.unknown_columns.length);
  $("job-unknown").textContent = "Colonnes ignorées : " + (job.unknown_columns || []).join(", ");
  $("job-retry").hidden = !["error", "partial", "cancelled"].includes(job.status) || job.file_purged;
  $("job-cancel").hidden = FINAL.has(job.status) || Boolean(job.cancel_requested_by);
  $("job-apply").hidden = !(job.dry_run && ["success", "partial"].includes(job.status)) || job.file_purged;
  $("job-revert").hidden = job.dry_run || !FINAL.has(job.status);
  if ($("job-revert").hidden) $("revert-confirm").hidden = true;
  $("changes-title").textContent = job.dry_run ? "Aperçu des modifications (500 premières)"
    : job.reverts_job_id ? "Modifications de cette annulation" : "Modifications";
}

async function jobView(id) {
  const job = await getJson(`/api/v1/imports/${id}`);
  renderJob(job);
  await Promise.all([loadLines(id, "errors"), loadLines(id, "warnings"), loadChanges(id)]);
  if (!FINAL.has(job.status)) {
    let last = [job.error_rows, job.warning_rows];
    follow(id, (j) => {
      if (state.jobId !== id) return;
      renderJob(j);
      // New lines or the end: refresh the tables (first page only while running).
      if (j.error_rows !== last[0] || FINAL.has(j.status)) loadLines(id, "errors").catch(() => {});
      if (j.warning_rows !== last[1] || FINAL.has(j.status)) loadLines(id, "warnings").catch(() => {});
      if (FINAL.has(j.status)) loadChanges(id).catch(() => {});
      last = [j.error_rows, j.warning_rows];
    });
  }
}

// One page of a job's error or warning lines (`kind`: "errors" | "warnings").
async function loadLines(id, kind) {
  const pageKey = kind + "Page";
  const page = await getJson(`/api/v1/imports/${id}/${kind}?page=${state[pageKey]}&per_page=${ERRORS_PER_PAGE}`);
  if (state.jobId !== id) return;
  $(`${kind}-total`).textContent = page.total ? `(${n(page.total)})` : "";
  $(`${kind}-empty`).hidden = page.total > 0;
  $(`${kind}-table`).hidden = page.total === 0;
  $(`${kind}-body`).replaceChildren(...page.items.map((e) => el("tr", {},
    el("td", { class: "num" }, e.row === 0 ? "fichier" : n(e.row)),
    el("td", {}, e.column || "—"),
    el("td", { class: "wrap" }, e.value || ""),
    el("td", {}, el("code", {}, e.code)),
    el("td", { class: "wrap" }, e.message),
  )));
  pager($(`${kind}-pager`), page.page, page.per_page, page.total, (p) => { state[pageKey] = p; loadLines(id, kind).catch((e) => flash(e.message, true)); });
}

async function downloadReport() {
  const id = state.jobId;
  const btn = $("job-report");
  btn.disabled = true;
  try {
    const resp = await api(`/api/v1/imports/${id}/report.xlsx`);
    const blob = await resp.blob();
    const cd = resp.headers.get("Content-Disposition") || "";
    const m = cd.match(/filename="([^"]+)"/);
    const a = el("a", { href: URL.createObjectURL(blob), download: m ? m[1] : `rapport-${id}.xlsx` });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  } catch (e) {
    flash("Rapport indisponible : " + e.message, true);
  } finally {
    btn.disabled = false;
  }
}

const ACTION_LABELS = { created: "créée", updated: "modifiée", deleted: "supprimée" };

// `before → after` of an update, field by field; the key fields of a creation or deletion.
function changeText(c) {
  const show = (v) => v === null || v === undefined ? "∅" : typeof v === "string" ? v : JSON.stringify(v);
  if (c.action === "updated") {
    return Object.keys(c.after || {}).filter((k) => k !== "updated_at")
      .map((k) => `${k} : ${show((c.before || {})[k])} → ${show(c.after[k])}`).join(" ; ");
  }
  const row = c.action === "created" ? c.after : c.before;
  return Object.entries(row || {}).filter(([k, v]) => v !== null && !["id", "created_at", "updated_at"].includes(k))
    .map(([k, v]) => `${k} : ${show(v)}`).join(" ; ");
}

async function loadChanges(id) {
  const page = await getJson(`/api/v1/imports/${id}/changes?page=${state.changesPage}&per_page=${ERRORS_PER_PAGE}`);
  if (state.jobId !== id) return;
  $("changes-total").textContent = page.total ? `(${n(page.total)})` : "";
  $("changes-empty").hidden = page.total > 0;
  $("changes-table").hidden = page.total === 0;
  $("changes-body").replaceChildren(...page.items.map((c) => el("tr", { dataset: { action: c.action } },
    el("td", {}, c.entity),
    el("td", {}, c.key || ""),
    el("td", {}, ACTION_LABELS[c.action] || c.action),
    el("td", { class: "wrap" }, changeText(c)),
  )));
  pager($("changes-pager"), page.page, page.per_page, page.total, (p) => { state.changesPage = p; loadChanges(id).catch((e) => flash(e.message, true)); });
}

async function revertJob() {
  $("revert-confirm").hidden = true;
  try {
    const job = await (await api(`/api/v1/imports/${state.jobId}/revert`, { method: "POST" })).json();
    flash("Annulation de l’import lancée.");
    location.hash = "#/imports/" + job.id;
  } catch (e) {
    flash("Impossible de défaire l’import : " + e.message, true);
  }
}

async function applyJob() {
  try {
    const job = await (await api(`/api/v1/imports/${state.jobId}/apply`, { method: "POST" })).json();
    flash("Import réel lancé.");
    location.hash = "#/imports/" + job.id;
  } catch (e) {
    flash("Application impossible : " + e.message, true);
  }
}

async function cancelJob() {
  try {
    await api(`/api/v1/imports/${state.jobId}/cancel`, { method: "POST" });
    flash("Annulation demandée.");
    await route();
  } catch (e) {
    flash("Annulation impossible : " + e.message, true);
  }
}

async function retryJob() {
  try {
    await api(`/api/v1/imports/${state.jobId}/retry`, { method: "POST" });
    flash("Import relancé.");
    await route();
  } catch (e) {
    flash("Relance impossible : " + e.message, true);
  }
}

async function batchesView() {
  const page = await getJson(`/api/v1/ai/generations?page=${state.batchesPage}&per_page=${PER_PAGE}`);
  const rows = page.items.map((b) => {
    const done = b.succeeded + b.failed + b.skipped;
    const pct = b.total ? Math.floor((done * 100) / b.total) : 100;
    const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100" }, el("span"));
    const pctEl = el("span", { class: "pct" });
    setBar(bar, pctEl, pct, b.status, `${pct} %`);
    return el("tr", { dataset: { id: b.id } },
      el("td", {}, el("code", { title: b.id }, b.id.slice(0, 8)), b.import_id ? el("div", {}, el("a", { href: "#/imports/" + b.import_id }, "import")) : null),
      el("td", {}, TARGET_LABELS[b.target] || b.target, el("div", { class: "muted" }, b.kinds.join(", "))),
      el("td", {}, badge(b.status)),
      el("td", {}, el("div", { class: "progress-line" }, bar, pctEl)),
      el("td", { class: "num" }, n(b.succeeded)),
      el("td", { class: "num" }, n(b.failed)),
      el("td", { class: "num" }, n(b.skipped)),
      el("td", { class: "num" }, n(b.pending)),
      el("td", {}, when(b.created_at)),
    );
  });
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: "9", class: "muted" }, "Aucun lot de génération.")));
  $("batches-body").replaceChildren(...rows);
  pager($("batches-pager"), page.page, page.per_page, page.total, (p) => { state.batchesPage = p; batchesView().catch(() => {}); });
}

async function queuesView() {
  const q = await getJson("/api/v1/queues");
  $("queues-note").textContent = `Profondeurs relevées par la passerelle toutes les ${q.sampled_every_s} s.`;
  const roles = { work: "travail", retry: "nouvel essai", dead: "lettres mortes" };
  const kinds = { imports: "Imports", ai_generation: "Génération IA" };
  $("queues-body").replaceChildren(...q.queues.map((x) => el("tr", {},
    el("td", {}, el("code", {}, x.name)),
    el("td", {}, kinds[x.kind] || x.kind),
    el("td", {}, roles[x.role] || x.role),
    el("td", { class: "num" }, n(x.ready)),
    el("td", { class: "num" }, n(x.consumers)),
  )));
}

// ---------------------------------------------------------------------------
// Forms
// ---------------------------------------------------------------------------

async function signIn(ev) {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (!t) return;
  $("login-error").hidden = true;
  $("login-submit").disabled = true;
  try {
    const resp = await fetch("/api/v1/imports/stats", { headers: { Authorization: "Bearer " + t } });
    if (resp.status === 401) throw new Error("Jeton refusé.");
    if (!resp.ok) throw new Error(`Le serveur répond ${resp.status}.`);
    sessionStorage.setItem(TOKEN_KEY, t);
    $("token").value = "";
    await route();
  } catch (e) {
    $("login-error").textContent = e.message;
    $("login-error").hidden = false;
  } finally {
    $("login-submit").disabled = false;
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopStreams();
  clearTimers();
  show("login");
  if (message) {
    $("login-error").textContent = message;
    $("login-error").hidden = false;
  }
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("import_type", $("upload-type").value);
  form.append("dry_run", $("upload-dry-run").checked ? "true" : "false");
  form.append("generate_ai", $("upload-ai").checked ? "true" : "false");
  form.append("file", file, file.name);
  $("upload-submit").disabled = true;
  $("upload-status").textContent = `Envoi de ${file.name} (${n(Math.ceil(file.size / 1024))} Ko)…`;
  try {
    const resp = await api("/api/v1/imports", { method: "POST", body: form });
    const job = await resp.json();
    $("upload-status").textContent = "";
    $("upload-form").reset();
    location.hash = "#/imports/" + job.id;
  } catch (e) {
    $("upload-status").textContent = "";
    if (e.status !== 401) flash("Envoi refusé : " + e.message, true);
  } finally {
    $("upload-submit").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => signOut(""));
  $("upload-form").addEventListener("submit", upload);
  $("job-report").addEventListener("click", downloadReport);
  $("job-retry").addEventListener("click", retryJob);
  $("job-cancel").addEventListener("click", cancelJob);
  $("job-apply").addEventListener("click", applyJob);
  $("job-revert").addEventListener("click", () => { $("revert-confirm").hidden = false; });
  $("job-revert-dismiss").addEventListener("click", () => { $("revert-confirm").hidden = true; });
  $("job-revert-confirm").addEventListener("click", revertJob);
  for (const id of ["filter-status", "filter-type"]) {
    $(id).addEventListener("change", () => { state.importsPage = 1; importsView().catch((e) => flash(e.message, true)); });
  }
  window.addEventListener("hashchange", route);
  route();
});
