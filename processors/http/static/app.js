// Cadenza's web UI: the runs of one namespace, where each one is, and what to do about it.
//
// A single page with hash routing, so every view is a URL to share and reload:
//   #/workflows?query=Q&status=RUNNING      the list (a visibility query, a status filter)
//   #/workflows/<workflowId>?runId=R        one run: summary, pending work, history, actions
// It talks only to the JSON API beside it (api/v1/...), with no framework and no build step.
"use strict";

(() => {
  const REFRESH_MS = 3000;
  const STATUS_FILTERS = [
    ["All", ""],
    ["Running", "RUNNING"],
    ["Completed", "COMPLETED"],
    ["Failed", "FAILED"],
    ["Canceled", "CANCELED"],
    ["Terminated", "TERMINATED"],
    ["Timed out", "TIMED_OUT"],
    ["Continued as new", "CONTINUED_AS_NEW"],
  ];
  // The API's status symbols -> the names a visibility query compares ExecutionStatus with.
  const QUERY_STATUS = {
    RUNNING: "Running",
    COMPLETED: "Completed",
    FAILED: "Failed",
    CANCELED: "Canceled",
    TERMINATED: "Terminated",
    TIMED_OUT: "TimedOut",
    CONTINUED_AS_NEW: "ContinuedAsNew",
  };

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  // -- small helpers ------------------------------------------------------------------

  /** An element with attributes and children; text is always set as text, never as HTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function storageGet(key, fallback) {
    try {
      const value = window.localStorage.getItem(key);
      return value === null ? fallback : value;
    } catch {
      return fallback;
    }
  }

  function storageSet(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch {
      // private mode or storage disabled: the setting lasts until reload
    }
  }

  const pad = (n, width = 2) => String(n).padStart(width, "0");

  /** An ISO time as "2026-12-07 17:00:00" in the chosen zone (local or UTC). */
  function formatTime(iso, { millis = false } = {}) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const utc = state.timeZone === "utc";
    const parts = utc
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
    const [y, mo, day, hh, mm, ss, ms] = parts;
    let text = `${y}-${pad(mo)}-${pad(day)} ${pad(hh)}:${pad(mm)}:${pad(ss)}`;
    if (millis) text += `.${pad(ms, 3)}`;
    return utc ? `${text} UTC` : text;
  }

  /** A duration in milliseconds as "1h 2m 3s" (or "250ms"). */
  function formatDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
    if (ms < 0) ms = 0;
    if (ms < 1000) return `${Math.round(ms)}ms`;
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const hrs = Math.floor(s / 3600);
    s -= hrs * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const out = [];
    if (d) out.push(`${d}d`);
    if (hrs) out.push(`${hrs}h`);
    if (m && !d) out.push(`${m}m`);
    if (s && !d && !hrs) out.push(`${s}s`);
    return out.join(" ") || "0s";
  }

  function ago(iso) {
    if (!iso) return "";
    const t = new Date(iso).getTime();
    if (Number.isNaN(t)) return "";
    return `${formatDuration(Date.now() - t)} ago`;
  }

  function timeCell(iso, options) {
    if (!iso) return h("span", { class: "muted", text: "—" });
    return h("time", { datetime: iso, title: `${iso} (${ago(iso)})`, text: formatTime(iso, options) });
  }

  /** "activity_type" or "pendingActivities" -> "Activity type", "Pending activities". */
  function label(key) {
    const words = String(key)
      .replace(/_/g, " ")
      .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
      .toLowerCase()
      .replace(/ ms$/, "")
      .trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function isEmpty(value) {
    if (value === null || value === undefined || value === "") return true;
    if (Array.isArray(value)) return value.length === 0;
    if (typeof value === "object") return Object.keys(value).length === 0;
    return false;
  }

  function clip(text, max = 120) {
    text = String(text);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  }

  function compact(value) {
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  /** A failure's message, and the messages of its causes, on one line. */
  function failureText(failure) {
    if (!failure || typeof failure !== "object") return compact(failure);
    const parts = [];
    for (let f = failure, depth = 0; f && depth < 4; f = f.cause, depth += 1) {
      const kind = f.info && typeof f.info === "object" && f.info.type ? `${f.info.type}: ` : "";
      parts.push(`${kind}${f.message || "(no message)"}`);
    }
    return parts.join(" ← caused by ");
  }

  function statusBadge(status, testid) {
    const s = status || "UNKNOWN";
    return h("span", { class: `badge status-${s.toLowerCase()}`, "data-testid": testid || "status-badge", text: s.replace(/_/g, " ") });
  }

  function shortId(id) {
    return id && id.length > 12 ? `${id.slice(0, 8)}…` : id || "";
  }

  function detailHash(workflowId, runId) {
    return `#/workflows/${enc(workflowId)}${runId ? `?runId=${enc(runId)}` : ""}`;
  }

  function listHash(query, status) {
    const params = new URLSearchParams();
    if (query) params.set("query", query);
    if (status) params.set("status", status);
    const search = params.toString();
    return `#/workflows${search ? `?${search}` : ""}`;
  }

  /** A generic value for a table cell or a definition: text, or JSON that opens on demand. */
  function valueNode(value, key) {
    if (isEmpty(value)) return h("span", { class: "muted", text: "—" });
    if (key && /failure/i.test(key) && typeof value === "object") {
      return h("details", { class: "inline-json failure-text" },
        h("summary", { text: clip(failureText(value), 200) }),
        h("pre", { text: JSON.stringify(value, null, 2) }));
    }
    if (key && /_ms$|Ms$/.test(key) && typeof value === "number") return formatDuration(value);
    if (typeof value === "object") {
      const text = JSON.stringify(value);
      if (text.length <= 80) return h("code", { text });
      return h("details", { class: "inline-json" },
        h("summary", h("code", { text: clip(text, 80) })),
        h("pre", { text: JSON.stringify(value, null, 2) }));
    }
    return String(value);
  }

  // -- the API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(code, message, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const init = { method, cache: "no-store", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`api/v1/${path}`, init);
    } catch (exc) {
      throw new ApiError("UNAVAILABLE", `Cannot reach the Cadenza server (${exc.message}). Is \`cadenza processors run\` still running?`, 0);
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = data && data.error ? data.error : {};
      throw new ApiError(error.code || "INTERNAL", error.message || `HTTP ${response.status} ${response.statusText}`, response.status);
    }
    return data;
  }

  // -- state and routing ----------------------------------------------------------------

  const state = {
    timeZone: storageGet("cadenza.timeZone", "local"),
    autoRefresh: storageGet("cadenza.autoRefresh", "on") !== "off",
    route: null,
    list: { query: "", status: "", tokens: [""], page: 0, next: "", pageSize: Number(storageGet("cadenza.pageSize", "20")) || 20, seq: 0, rendered: "" },
    detail: { workflowId: "", runId: "", seq: 0, description: null, events: [], expanded: new Set(), historyKey: "", busy: false },
    loading: false,
  };

  function parseHash() {
    const raw = window.location.hash.replace(/^#/, "") || "/workflows";
    const at = raw.indexOf("?");
    const path = at < 0 ? raw : raw.slice(0, at);
    const params = new URLSearchParams(at < 0 ? "" : raw.slice(at + 1));
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "workflows" && parts.length >= 2) {
      let workflowId;
      try {
        workflowId = decodeURIComponent(parts.slice(1).join("/"));
      } catch {
        workflowId = parts.slice(1).join("/");
      }
      return { view: "detail", workflowId, runId: params.get("runId") || "" };
    }
    const status = (params.get("status") || "").toUpperCase();
    return { view: "list", query: params.get("query") || "", status: QUERY_STATUS[status] ? status : "" };
  }

  /** Go to a hash; a hash equal to the current one reloads its view instead. */
  function navigate(hash) {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  }

  function route() {
    const r = parseHash();
    state.route = r;
    $("list-view").hidden = r.view !== "list";
    $("detail-view").hidden = r.view !== "detail";
    if (r.view === "list") {
      const list = state.list;
      if (list.query !== r.query || list.status !== r.status) {
        list.tokens = [""];
        list.page = 0;
      }
      list.query = r.query;
      list.status = r.status;
      list.rendered = "";
      $("query-input").value = r.query;
      renderStatusFilters();
      document.title = titleFor("Workflows");
      loadList();
    } else {
      const d = state.detail;
      if (d.workflowId !== r.workflowId || d.runId !== r.runId) {
        d.workflowId = r.workflowId;
        d.runId = r.runId;
        d.description = null;
        d.events = [];
        d.expanded = new Set();
        d.historyKey = "";
        clearDetail();
      }
      $("action-notice").hidden = true;
      document.title = titleFor(r.workflowId);
      loadDetail();
    }
  }

  let namespace = "";
  function titleFor(what) {
    return `${what} · ${namespace ? `${namespace} · ` : ""}Cadenza`;
  }

  // -- the banner: errors that belong to no field ---------------------------------------

  function showBanner(message) {
    $("banner-text").textContent = message;
    $("banner").hidden = false;
  }

  function hideBanner() {
    $("banner").hidden = true;
  }

  // -- the list -------------------------------------------------------------------------

  function effectiveQuery() {
    const { query, status } = state.list;
    const user = query.trim();
    if (!status) return user;
    const clause = `ExecutionStatus = '${QUERY_STATUS[status]}'`;
    if (!user) return clause;
    // The status filter joins the user's condition, before any ORDER BY.
    const order = /\border\s+by\b/i.exec(user);
    const where = (order ? user.slice(0, order.index) : user).trim();
    const tail = order ? ` ${user.slice(order.index)}` : "";
    return `${where ? `(${where}) AND ` : ""}${clause}${tail}`;
  }

  function renderStatusFilters() {
    const box = $("status-filters");
    box.replaceChildren(
      ...STATUS_FILTERS.map(([name, status]) =>
        h("button", {
          type: "button",
          class: `chip${status ? ` chip-${status.toLowerCase()}` : ""}`,
          "aria-pressed": String(state.list.status === status),
          "data-testid": `status-filter-${status || "ALL"}`,
          text: name,
          onclick: () => navigate(listHash(state.list.query, status)),
        })
      )
    );
  }

  function showQueryError(message) {
    const el = $("query-error");
    el.textContent = message || "";
    el.hidden = !message;
    $("query-input").setAttribute("aria-invalid", message ? "true" : "false");
  }

  async function loadList({ quiet = false } = {}) {
    const list = state.list;
    const seq = ++list.seq;
    const query = effectiveQuery();
    const params = new URLSearchParams({ query, pageSize: String(list.pageSize) });
    const token = list.tokens[list.page];
    if (token) params.set("nextPageToken", token);
    if (!quiet) $("workflow-count").textContent = "Loading…";
    try {
      const [page, count] = await Promise.all([
        api(`workflows?${params}`),
        api(`workflow-count?${new URLSearchParams({ query })}`),
      ]);
      if (seq !== list.seq || state.route.view !== "list") return;
      showQueryError("");
      hideBanner();
      renderList(page, count.count);
    } catch (exc) {
      if (seq !== list.seq || state.route.view !== "list") return;
      if (exc.code === "INVALID_ARGUMENT") {
        showQueryError(exc.message);
        renderList({ executions: [], nextPageToken: "" }, null);
        $("list-empty").hidden = true;
      } else {
        showBanner(exc.message);
        if (!quiet) $("workflow-count").textContent = "—";
      }
    }
  }

  function renderList(page, count) {
    const list = state.list;
    list.next = page.nextPageToken || "";
    const n = count === null ? "—" : count;
    $("workflow-count").textContent = count === null ? "—" : `${n} workflow${count === 1 ? "" : "s"}`;
    $("page-label").textContent = `Page ${list.page + 1}`;
    $("next-page").disabled = !list.next;
    $("prev-page").disabled = list.page === 0;
    $("first-page").disabled = list.page === 0;
    const executions = page.executions || [];
    $("list-empty").hidden = executions.length > 0;
    // Same rows as on screen: leave the DOM (and any selection in it) alone.
    const key = JSON.stringify([executions, state.timeZone]);
    if (key === list.rendered) return;
    list.rendered = key;
    $("workflow-rows").replaceChildren(...executions.map(executionRow));
  }

  function executionRow(e) {
    const link = detailHash(e.workflowId, e.runId);
    return h("tr", { "data-testid": "workflow-row", "data-workflow-id": e.workflowId, "data-run-id": e.runId, "data-status": e.status },
      h("td", {}, statusBadge(e.status)),
      h("td", { class: "wf-id" }, h("a", { href: link, "data-testid": "workflow-link", text: e.workflowId })),
      h("td", { class: "col-run" }, h("code", { title: e.runId, text: shortId(e.runId) })),
      h("td", { "data-label": "Type", text: e.type }),
      h("td", { "data-label": "Start" }, timeCell(e.startTime)),
      h("td", { class: "col-close", "data-label": "Close" }, timeCell(e.closeTime)),
      h("td", { class: "num", "data-label": "Events", text: e.historyLength ?? "" })
    );
  }

  // -- one run --------------------------------------------------------------------------

  function clearDetail() {
    $("detail-id").textContent = state.detail.workflowId;
    $("detail-status").replaceChildren();
    $("detail-status").className = "badge";
    $("detail-error").hidden = true;
    $("actions").hidden = true;
    $("stuck").hidden = true;
    $("summary").replaceChildren();
    $("pending-activities").replaceChildren();
    $("pending-children").replaceChildren();
    $("history-rows").replaceChildren();
    $("history-count").textContent = "";
  }

  async function loadDetail({ quiet = false } = {}) {
    const d = state.detail;
    const seq = ++d.seq;
    const id = d.workflowId;
    const run = d.runId ? `?runId=${enc(d.runId)}` : "";
    try {
      const description = await api(`workflows/${enc(id)}${run}`);
      // History of the very run described, even if a newer run starts in between.
      const history = await api(`workflows/${enc(id)}/history?runId=${enc(description.runId)}`);
      if (seq !== d.seq || state.route.view !== "detail") return;
      $("detail-error").hidden = true;
      hideBanner();
      d.description = description;
      renderDetail(description, history.events || []);
    } catch (exc) {
      if (seq !== d.seq || state.route.view !== "detail") return;
      if (quiet && exc.code === "UNAVAILABLE") {
        showBanner(exc.message);
        return;
      }
      const el = $("detail-error");
      el.textContent = exc.message;
      el.hidden = false;
    }
  }

  function renderDetail(desc, events) {
    const d = state.detail;
    const running = desc.status === "RUNNING";
    $("detail-id").textContent = desc.workflowId;
    const badge = $("detail-status");
    badge.className = `badge status-${String(desc.status).toLowerCase()}`;
    badge.textContent = String(desc.status).replace(/_/g, " ");
    $("actions").hidden = !running;
    for (const dialog of document.querySelectorAll("dialog")) {
      for (const target of dialog.querySelectorAll(".dialog-target")) target.textContent = desc.workflowId;
    }
    renderSummary(desc, events);
    renderPendingActivities(desc.pendingActivities || [], events);
    renderPendingChildren(desc.pendingChildren || []);
    // A closed run has nothing pending: its cards would only say so.
    $("pending-activities-card").hidden = !running;
    $("pending-children-card").hidden = !running;
    const last = events.length ? events[events.length - 1] : null;
    const key = JSON.stringify([desc.runId, events.length, last && last.eventId, running, state.timeZone]);
    if (key !== d.historyKey) {
      d.historyKey = key;
      d.events = events;
      renderHistory(events, running);
    }
    renderStuck(desc, events);
  }

  function renderSummary(desc, events) {
    const rows = [];
    const add = (term, ...value) => rows.push(h("div", { class: "summary-item" }, h("dt", { text: term }), h("dd", {}, ...value)));
    add("Status", statusBadge(desc.status, "summary-status"));
    add("Workflow type", h("span", { "data-testid": "summary-type", text: desc.type }));
    add("Run ID", h("code", { "data-testid": "summary-run-id", text: desc.runId }));
    add("Task queue", h("code", { text: desc.taskQueue }));
    add("Start", timeCell(desc.startTime, { millis: true }));
    if (desc.executionTime && desc.executionTime !== desc.startTime) add("First task due", timeCell(desc.executionTime, { millis: true }));
    add("Close", timeCell(desc.closeTime, { millis: true }));
    const start = new Date(desc.startTime).getTime();
    const end = desc.closeTime ? new Date(desc.closeTime).getTime() : Date.now();
    add(desc.closeTime ? "Duration" : "Running for", formatDuration(end - start));
    add("History length", String(desc.historyLength ?? "—"));
    if (desc.parentWorkflowId) {
      add("Parent", h("a", { href: detailHash(desc.parentWorkflowId, desc.parentRunId), "data-testid": "parent-link", text: desc.parentWorkflowId }),
        desc.parentRunId ? h("code", { class: "muted", title: desc.parentRunId, text: ` ${shortId(desc.parentRunId)}` }) : null);
    }
    // How a closed run ended, from its closing event.
    const closing = desc.closeTime && events.length ? events[events.length - 1] : null;
    const ended = closing ? closing.attributes || {} : {};
    if (closing && "result" in ended) add("Result", h("span", { "data-testid": "summary-result" }, valueNode(ended.result)));
    if (closing && !isEmpty(ended.failure)) add("Failure", h("span", { class: "failure-text", "data-testid": "summary-failure", text: failureText(ended.failure) }));
    if (closing && !isEmpty(ended.reason)) add("Reason", h("span", { "data-testid": "summary-reason", text: ended.reason }));
    if (closing && ended.new_execution_run_id) add("Continued as", h("a", { href: detailHash(desc.workflowId, ended.new_execution_run_id), text: shortId(ended.new_execution_run_id) }));
    if (!isEmpty(desc.searchAttributes)) add("Search attributes", valueNode(desc.searchAttributes));
    if (!isEmpty(desc.memo)) add("Memo", valueNode(desc.memo));
    $("summary").replaceChildren(...rows);
  }

  /** A table of whatever fields the objects have, the well-known ones first. */
  function objectTable(items, preferred, testid) {
    const keys = [...preferred.filter((k) => items.some((item) => k in item))];
    for (const item of items) for (const k of Object.keys(item)) if (!keys.includes(k)) keys.push(k);
    return h("div", { class: "table-wrap" },
      h("table", { class: "objects", "data-testid": testid },
        h("thead", {}, h("tr", {}, keys.map((k) => h("th", { scope: "col", text: label(k) })))),
        h("tbody", {}, items.map((item) => h("tr", { "data-testid": `${testid}-row` }, keys.map((k) => h("td", { "data-field": k }, valueNode(item[k], k))))))));
  }

  function renderPendingActivities(activities, events) {
    $("pending-activities-count").textContent = `(${activities.length})`;
    const box = $("pending-activities");
    if (!activities.length) {
      box.replaceChildren(h("p", { class: "muted", text: "None." }));
      return;
    }
    const table = objectTable(activities, ["activity_type", "activity_id", "state", "attempt", "last_failure", "scheduled_event_id", "last_heartbeat_details"], "pending-activity");
    // Retrying activities stand out: they are the usual reason a run is stuck.
    table.querySelectorAll("tbody tr").forEach((tr, i) => {
      const a = activities[i];
      if ((a.attempt || 0) > 1 || !isEmpty(a.last_failure)) tr.classList.add("is-warning");
    });
    box.replaceChildren(table);
  }

  function renderPendingChildren(children) {
    $("pending-children-count").textContent = `(${children.length})`;
    const box = $("pending-children");
    if (!children.length) {
      box.replaceChildren(h("p", { class: "muted", text: "None." }));
      return;
    }
    const table = objectTable(children, ["workflow_id", "workflow_type", "run_id", "initiated_event_id"], "pending-child");
    table.querySelectorAll("tbody tr").forEach((tr, i) => {
      const c = children[i];
      const cell = tr.querySelector('td[data-field="workflow_id"]');
      if (cell && c.workflow_id) cell.replaceChildren(h("a", { href: detailHash(c.workflow_id, c.run_id || ""), text: c.workflow_id }));
    });
    box.replaceChildren(table);
  }

  // -- "where it is stuck" --------------------------------------------------------------

  function renderStuck(desc, events) {
    const box = $("stuck");
    if (desc.status !== "RUNNING") {
      box.hidden = true;
      return;
    }
    const items = [];
    const say = (kind, ...content) => items.push(h("li", { class: `stuck-${kind}` }, ...content));
    const last = events[events.length - 1];
    if (last) {
      say("info", "Last event ", eventJump(last), ` ${last.eventType}, ${ago(last.eventTime)}`, summarize(last) ? ` — ${summarize(last)}` : ".");
    }
    const byId = new Map(events.map((e) => [e.eventId, e]));

    // A failing workflow task is retried forever, and nothing else moves meanwhile.
    // History keeps its first failure; later attempts are transient (as in Temporal),
    // and the description names the current one.
    const task = desc.pendingWorkflowTask;
    const attemptNow = task && task.attempt > 1 ? ` Attempt ${task.attempt} is ${String(task.state).toLowerCase()} now.` : "";
    const lastTaskFailure = [...events].reverse().find((e) => e.eventType.startsWith("WorkflowTask") && e.eventType !== "WorkflowTaskScheduled" && e.eventType !== "WorkflowTaskStarted");
    if (lastTaskFailure && lastTaskFailure.eventType === "WorkflowTaskTimedOut") {
      // A worker said it started the task and did not answer within its timeout.
      say("warning", "The workflow task timed out (", eventJump(lastTaskFailure), "): a worker started it and did not answer in time (a very long replay, or a worker that hangs or died). ",
        "It is sent again, each attempt with twice the timeout, up to 10 minutes." + attemptNow);
    } else if (lastTaskFailure && /Failed/.test(lastTaskFailure.eventType)) {
      const a = lastTaskFailure.attributes || {};
      say("error", "The workflow task is failing (", eventJump(lastTaskFailure), "): ",
        h("strong", { text: [a.cause, a.failure ? failureText(a.failure) : ""].filter(Boolean).join(": ") || lastTaskFailure.eventType }),
        ". It is retried until the workflow code or the worker is fixed." + attemptNow);
    }
    if (last && (last.eventType === "WorkflowTaskScheduled" || last.eventType === "WorkflowTaskStarted")) {
      // Sent and not answered within its timeout: no worker has taken it (a task
      // waits for one, as in Temporal), or the workers are far behind.
      const waited = Date.now() - new Date(last.eventTime).getTime();
      const scheduled = [...events].reverse().find((e) => e.eventType === "WorkflowTaskScheduled");
      const timeout = (scheduled && scheduled.attributes && scheduled.attributes.start_to_close_timeout_ms) || 10000;
      if (waited > timeout) {
        say("warning", `A workflow task has waited ${formatDuration(waited)} for a worker on task queue `, h("code", { text: desc.taskQueue }), ": is a worker for it running?");
      }
    }

    for (const a of desc.pendingActivities || []) {
      const scheduled = byId.get(a.scheduled_event_id);
      const queue = scheduled && scheduled.attributes ? scheduled.attributes.task_queue : "";
      const parts = [`Activity `, h("strong", { text: a.activity_type || a.activity_id || "?" })];
      if (a.activity_id) parts.push(` (id ${a.activity_id})`);
      parts.push(` is ${String(a.state || "pending").toLowerCase().replace(/_/g, " ")}`);
      if (a.attempt) parts.push(`, attempt ${a.attempt}`);
      const failed = !isEmpty(a.last_failure);
      if (failed) parts.push("; last failure: ", h("span", { class: "failure-text", text: failureText(a.last_failure) }));
      else if (a.state === "SCHEDULED" && queue) parts.push(" on task queue ", h("code", { text: queue }), ", waiting for an activity worker");
      say(failed || (a.attempt || 0) > 1 ? "warning" : "info", ...parts, ".");
    }
    for (const c of desc.pendingChildren || []) {
      say("info", "Waiting on child workflow ", h("a", { href: detailHash(c.workflow_id, c.run_id || ""), text: c.workflow_id }), ` (${c.workflow_type})${c.run_id ? "" : ", not started yet"}.`);
    }
    // Timers started and neither fired nor canceled.
    const timers = new Map();
    for (const e of events) {
      const a = e.attributes || {};
      if (e.eventType === "TimerStarted") timers.set(e.eventId, e);
      else if (e.eventType === "TimerFired" || e.eventType === "TimerCanceled") timers.delete(a.started_event_id);
    }
    for (const t of timers.values()) {
      const a = t.attributes || {};
      const fires = typeof a.start_to_fire_timeout_ms === "number" ? new Date(new Date(t.eventTime).getTime() + a.start_to_fire_timeout_ms).toISOString() : null;
      say("info", "Timer ", h("code", { text: a.timer_id ?? "?" }), " is sleeping", fires ? [" until ", timeCell(fires), ` (in ${formatDuration(new Date(fires).getTime() - Date.now())})`] : "", ".");
    }
    const nothingPending = !(desc.pendingActivities || []).length && !(desc.pendingChildren || []).length && !timers.size;
    if (nothingPending && last && last.eventType === "WorkflowTaskCompleted") {
      say("info", "Nothing is pending: the workflow is waiting for a signal, an update or a condition in its code.");
    }
    $("stuck-list").replaceChildren(...items);
    box.hidden = items.length === 0;
  }

  /** A link-like button that opens and shows one history event. */
  function eventJump(event) {
    return h("button", { type: "button", class: "link-button", "data-testid": "event-jump", text: `#${event.eventId}`, onclick: () => showEvent(event.eventId) });
  }

  function showEvent(eventId) {
    state.detail.expanded.add(eventId);
    setExpanded(eventId, true);
    const row = document.querySelector(`tr[data-event-id="${eventId}"]`);
    if (row) {
      row.scrollIntoView({ block: "center" });
      const button = row.querySelector("button.event-toggle");
      if (button) button.focus({ preventScroll: true });
    }
  }

  // -- history --------------------------------------------------------------------------

  const SUMMARY_FIELDS = [
    ["workflow_type", "Type"],
    ["activity_type", "Activity"],
    ["signal_name", "Signal"],
    ["timer_id", "Timer"],
    ["marker_name", "Marker"],
    ["workflow_id", "Workflow"],
    ["reason", "Reason"],
    ["cause", "Cause"],
    ["failure", "Failure"],
    ["start_to_fire_timeout_ms", "Fires after"],
    ["attempt", "Attempt"],
    ["result", "Result"],
    ["input", "Input"],
    ["details", "Details"],
    ["new_execution_run_id", "New run"],
    ["task_queue", "Queue"],
    ["identity", "By"],
  ];

  /** The few attributes that say what an event is about, on one line. */
  function summarize(event) {
    const a = event.attributes || {};
    const parts = [];
    for (const [key, name] of SUMMARY_FIELDS) {
      if (!(key in a) || isEmpty(a[key])) continue;
      const v = a[key];
      if (key === "attempt" && (v <= 1 || event.eventType === "WorkflowTaskScheduled")) continue;
      if (key === "identity" && parts.length) continue;
      let text;
      if (key === "failure") text = failureText(v);
      else if (key.endsWith("_ms") && typeof v === "number") text = formatDuration(v);
      else text = compact(v);
      parts.push(`${name}: ${clip(text, 80)}`);
      if (parts.length >= 4) break;
    }
    return clip(parts.join(" · "), 240);
  }

  /** "WorkflowTaskStarted" with line-break opportunities between its words. */
  function camelBreaks(text) {
    const out = [];
    String(text).split(/(?=[A-Z])/).forEach((word, i) => {
      if (i) out.push(h("wbr"));
      out.push(word);
    });
    return out;
  }

  function eventCategory(type) {
    if (/Failed|TimedOut|Terminated/.test(type)) return "failure";
    if (type === "WorkflowExecutionCompleted") return "success";
    if (type.startsWith("WorkflowTask")) return "task";
    if (type.startsWith("Activity")) return "activity";
    if (type.startsWith("Timer")) return "timer";
    if (/Signal/.test(type)) return "signal";
    if (/Child|External/.test(type)) return "child";
    return "execution";
  }

  function renderHistory(events, running) {
    $("history-count").textContent = `(${events.length} event${events.length === 1 ? "" : "s"})`;
    const rows = [];
    events.forEach((e, i) => {
      const isLast = running && i === events.length - 1;
      const open = state.detail.expanded.has(e.eventId);
      const detailId = `event-detail-${e.eventId}`;
      const category = eventCategory(e.eventType);
      const toggle = h("button", { type: "button", class: "event-toggle", "aria-expanded": String(open), "aria-controls": detailId, "data-testid": "event-toggle" },
        h("span", { class: "chevron", "aria-hidden": "true" }), h("span", {}, camelBreaks(e.eventType)));
      const tr = h("tr", {
        class: `event-row cat-${category}${isLast ? " is-last" : ""}`,
        "data-testid": "history-row",
        "data-event-id": e.eventId,
        "data-event-type": e.eventType,
      },
        h("td", { class: "num", text: e.eventId }),
        h("td", { class: "nowrap" }, timeCell(e.eventTime, { millis: true })),
        h("td", { class: "event-type" }, toggle, isLast ? h("span", { class: "latest", "data-testid": "last-event", text: "latest" }) : null),
        h("td", { class: "event-summary", text: summarize(e) }));
      tr.addEventListener("click", (ev) => {
        if (ev.target.closest("a, summary, pre") || (ev.target !== toggle && !toggle.contains(ev.target) && window.getSelection().toString())) return;
        toggleEvent(e.eventId);
      });
      rows.push(tr);
      const detail = h("tr", { class: "event-detail", id: detailId, "data-event-id-detail": e.eventId },
        h("td", { colspan: 4 }, h("pre", { "data-testid": "event-detail", text: JSON.stringify(e.attributes ?? {}, null, 2) })));
      detail.hidden = !open;
      rows.push(detail);
    });
    $("history-rows").replaceChildren(...rows);
  }

  function setExpanded(eventId, open) {
    const row = document.querySelector(`tr[data-event-id="${eventId}"]`);
    const detail = document.getElementById(`event-detail-${eventId}`);
    if (!row || !detail) return;
    detail.hidden = !open;
    row.querySelector("button.event-toggle").setAttribute("aria-expanded", String(open));
  }

  function toggleEvent(eventId) {
    const expanded = state.detail.expanded;
    const open = !expanded.has(eventId);
    if (open) expanded.add(eventId);
    else expanded.delete(eventId);
    setExpanded(eventId, open);
  }

  // -- actions --------------------------------------------------------------------------

  function fieldError(id, message) {
    const el = $(id);
    el.textContent = message || "";
    el.hidden = !message;
  }

  function openDialog(id) {
    const dialog = $(id);
    dialog.querySelectorAll(".field-error").forEach((el) => {
      el.hidden = true;
      el.textContent = "";
    });
    dialog.showModal();
    const first = dialog.querySelector("input, textarea");
    if (first) first.focus();
  }

  /** Runs an action from a dialog: errors stay in the dialog, success closes it and refreshes. */
  async function perform(dialogId, errorId, action, body, done) {
    const desc = state.detail.description;
    if (!desc) return;
    const dialog = $(dialogId);
    const confirm = dialog.querySelector('button[value="confirm"]');
    const original = confirm.textContent;
    confirm.disabled = true;
    confirm.textContent = "Working…";
    try {
      await api(`workflows/${enc(desc.workflowId)}/${action}`, { method: "POST", body: { ...body, runId: desc.runId } });
      dialog.close();
      const notice = $("action-notice");
      notice.textContent = done;
      notice.hidden = false;
      await loadDetail();
      // The run reacts through its worker: look again shortly even without auto-refresh.
      window.setTimeout(() => {
        if (state.route.view === "detail") loadDetail({ quiet: true });
      }, 1000);
    } catch (exc) {
      fieldError(errorId, exc.message);
    } finally {
      confirm.disabled = false;
      confirm.textContent = original;
    }
  }

  /** The signal's arguments from the dialog, or an error message for the user. */
  function signalArguments() {
    const text = $("signal-input").value.trim();
    const many = $("signal-multi").checked;
    if (!text) return { args: [] };
    let value;
    try {
      value = JSON.parse(text);
    } catch (exc) {
      return { error: `The input is not valid JSON (${exc.message}). Strings need double quotes, e.g. "yes"; several arguments go in an array with "several arguments" checked.` };
    }
    if (many) {
      if (!Array.isArray(value)) return { error: 'With "several arguments" checked, the input must be a JSON array, one element per argument, e.g. ["yes", 2].' };
      return { args: value };
    }
    return { args: [value] };
  }

  function setUpActions() {
    for (const button of document.querySelectorAll("dialog [data-close]")) {
      button.addEventListener("click", () => button.closest("dialog").close());
    }
    $("action-signal").addEventListener("click", () => openDialog("signal-dialog"));
    $("action-cancel").addEventListener("click", () => openDialog("cancel-dialog"));
    $("action-terminate").addEventListener("click", () => openDialog("terminate-dialog"));
    $("signal-input").addEventListener("input", () => fieldError("signal-error", ""));

    $("signal-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = $("signal-name").value.trim();
      if (!name) {
        fieldError("signal-error", "Give the signal's name, as the workflow declares it (@workflow.signal).");
        $("signal-name").focus();
        return;
      }
      const { args, error } = signalArguments();
      if (error) {
        fieldError("signal-error", error);
        $("signal-input").focus();
        return;
      }
      perform("signal-dialog", "signal-error", "signal", { name, input: args }, `Signal “${name}” sent.`);
    });
    $("cancel-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      perform("cancel-dialog", "cancel-error", "cancel", {}, "Cancellation requested.");
    });
    $("terminate-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const reason = $("terminate-reason").value.trim();
      perform("terminate-dialog", "terminate-error", "terminate", reason ? { reason } : {}, "Run terminated.");
    });
  }

  // -- refresh --------------------------------------------------------------------------

  async function refresh({ quiet = true } = {}) {
    if (state.loading || !state.route) return;
    state.loading = true;
    try {
      if (state.route.view === "list") await loadList({ quiet });
      else await loadDetail({ quiet });
    } finally {
      state.loading = false;
    }
  }

  function tick() {
    if (!state.autoRefresh || document.hidden || document.querySelector("dialog[open]")) return;
    // A query the server rejected stays rejected until the user edits it.
    if (state.route && state.route.view === "list" && !$("query-error").hidden) return;
    if (state.route && state.route.view === "detail") {
      const desc = state.detail.description;
      // A closed run does not change; keep polling only while it runs (or before it loads).
      if (desc && desc.status !== "RUNNING") return;
    }
    refresh();
  }

  // -- start ----------------------------------------------------------------------------

  function setUp() {
    $("auto-refresh").checked = state.autoRefresh;
    $("auto-refresh").addEventListener("change", (ev) => {
      state.autoRefresh = ev.target.checked;
      storageSet("cadenza.autoRefresh", state.autoRefresh ? "on" : "off");
      if (state.autoRefresh) refresh();
    });
    $("time-zone").value = state.timeZone === "utc" ? "utc" : "local";
    $("time-zone").addEventListener("change", (ev) => {
      state.timeZone = ev.target.value;
      storageSet("cadenza.timeZone", state.timeZone);
      state.detail.historyKey = "";
      if (state.route.view === "detail" && state.detail.description) renderDetail(state.detail.description, state.detail.events);
      else loadList({ quiet: true });
    });
    $("banner-close").addEventListener("click", hideBanner);

    $("query-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      navigate(listHash($("query-input").value.trim(), state.list.status));
    });
    $("query-clear").addEventListener("click", () => {
      $("query-input").value = "";
      navigate(listHash("", state.list.status));
    });
    $("page-size").value = String(state.list.pageSize);
    $("page-size").addEventListener("change", (ev) => {
      state.list.pageSize = Number(ev.target.value) || 20;
      storageSet("cadenza.pageSize", String(state.list.pageSize));
      state.list.tokens = [""];
      state.list.page = 0;
      loadList();
    });
    $("next-page").addEventListener("click", () => {
      const list = state.list;
      if (!list.next) return;
      list.tokens = list.tokens.slice(0, list.page + 1).concat([list.next]);
      list.page += 1;
      loadList();
    });
    $("prev-page").addEventListener("click", () => {
      if (state.list.page === 0) return;
      state.list.page -= 1;
      loadList();
    });
    $("first-page").addEventListener("click", () => {
      state.list.page = 0;
      loadList();
    });

    $("detail-refresh").addEventListener("click", () => loadDetail());
    $("expand-all").addEventListener("click", () => {
      for (const e of state.detail.events) {
        state.detail.expanded.add(e.eventId);
        setExpanded(e.eventId, true);
      }
    });
    $("collapse-all").addEventListener("click", () => {
      for (const id of state.detail.expanded) setExpanded(id, false);
      state.detail.expanded.clear();
    });
    setUpActions();

    window.addEventListener("hashchange", route);
    window.setInterval(tick, REFRESH_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) tick();
    });

    api("namespace")
      .then((info) => {
        namespace = info.namespace;
        $("namespace").textContent = info.namespace;
        $("version").textContent = info.version ? `v${info.version}` : "";
        document.title = titleFor(state.route.view === "list" ? "Workflows" : state.route.workflowId);
      })
      .catch((exc) => {
        $("namespace").textContent = "?";
        showBanner(exc.message);
      });
    route();
  }

  setUp();
})();
