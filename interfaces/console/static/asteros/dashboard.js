/* AsterOS live dashboard: plain JavaScript, no build step, no network beyond this server.
 *
 * ws/dashboard/ gives a snapshot, then run lifecycle rows and a summary every second; it also
 * takes start / cancel / retry. Runs waiting for a person come with their pending interrupts;
 * a decision on one is POSTed to the page's resolve URL (with the CSRF token). Watching a run opens ws/runs/{id}/?after=N (and one per child
 * run, nested), resuming after the last seq it saw if the socket drops. Everything is rendered
 * with textContent: nothing a model or a user typed is ever parsed as HTML.
 */
(function () {
  "use strict";

  var body = document.body;
  var ACTIVE = { queued: true, running: true, interrupted: true };
  var ZERO_ID = "00000000-0000-0000-0000-000000000000"; // the interrupt id in the page's resolve URL
  var CHART_POINTS = 120;
  var MAX_RUN_ROWS = 60;
  var MAX_DEPTH = 4;
  var MAX_KNOWN_RUNS = 2000; // finished runs beyond this are forgotten, oldest first

  var state = {
    runs: new Map(), // id -> row
    targets: new Map(), // "kind:id" -> card
    summaries: [],
    socket: null,
    pending: new Map(), // ref -> callback
    nextRef: 1,
    watched: null, // the top RunView
    interruptNodes: new Map(), // interrupt id -> its card (kept, so what a reviewer typed stays)
    dirty: false,
  };

  // --- small helpers

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === undefined || value === null || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else if (key === "dataset") Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : value);
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function wsUrl(path) {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + location.host + path;
  }

  function shortId(id) { return id ? String(id).slice(0, 8) : ""; }

  // Durations in whole units, by the rules of cosmos/formatting.py (format_duration): below a
  // second in milliseconds, else the two largest units ("2 min 3 s", "1 h 5 min").
  var UNITS = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  function fmtMs(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "\u2013";
    ms = Math.max(0, ms);
    if (Math.round(ms) < 1000) return Math.round(ms) + " ms";
    var remaining = Math.round(ms / 1000);
    var parts = [];
    for (var i = 0; i < UNITS.length && parts.length < 2; i++) {
      var count = Math.floor(remaining / UNITS[i][1]);
      remaining -= count * UNITS[i][1];
      if (count || parts.length) parts.push(count + " " + UNITS[i][0]);
    }
    return parts.filter(function (part, index) { return index === 0 || part.indexOf("0 ") !== 0; }).join(" ");
  }
  window.asterosFormatDuration = fmtMs;  // the browser tests compare it with format_duration

  function fmtNum(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString(); }

  function duration(row) {
    if (!row.startedAt) return null;
    var start = Date.parse(row.startedAt);
    var end = row.finishedAt ? Date.parse(row.finishedAt) : Date.now();
    return end - start;
  }

  function pretty(text) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function schedule() {
    if (state.dirty) return;
    state.dirty = true;
    requestAnimationFrame(function () { state.dirty = false; render(); });
  }

  // --- the dashboard socket

  function connect(delay) {
    var conn = document.getElementById("conn");
    var socket = new WebSocket(wsUrl(body.dataset.wsDashboard));
    state.socket = socket;
    socket.onopen = function () { conn.textContent = "live"; conn.className = "conn live"; delay = 0; };
    socket.onmessage = function (message) { onDashboard(JSON.parse(message.data)); };
    socket.onclose = function (event) {
      conn.className = "conn down";
      if (event.code === 4401 || event.code === 4403) {
        conn.textContent = "not allowed (" + event.code + "): log in as staff";
        return;
      }
      var wait = Math.min(10000, (delay || 500) * 2);
      conn.textContent = "reconnecting…";
      setTimeout(function () { connect(wait); }, wait);
    };
  }

  function send(action, fields, callback) {
    var ref = state.nextRef++;
    if (callback) state.pending.set(ref, callback);
    var message = Object.assign({ action: action, ref: ref }, fields);
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(JSON.stringify(message));
    else if (callback) { state.pending.delete(ref); callback({ type: "error", message: "not connected" }); }
  }

  function onDashboard(frame) {
    switch (frame.type) {
      case "snapshot":
        state.runs.clear();
        (frame.runs || []).forEach(upsertRun);
        state.targets.clear();
        (frame.targets || []).forEach(function (card) { state.targets.set(card.kind + ":" + card.id, card); });
        renderTargetOptions();
        onSummary(frame.summary);
        break;
      case "runs":
        (frame.runs || []).forEach(upsertRun);
        break;
      case "summary":
        onSummary(frame.summary);
        break;
      case "started":
      case "cancelled":
      case "retried":
        if (frame.run) upsertRun(frame.run);
        break;
      case "error":
        if (frame.ref === undefined || !state.pending.has(frame.ref)) showStatus(frame.message, true);
        break;
    }
    if (frame.ref !== undefined && state.pending.has(frame.ref)) {
      var callback = state.pending.get(frame.ref);
      state.pending.delete(frame.ref);
      callback(frame);
    }
    schedule();
  }

  function upsertRun(row) {
    var old = state.runs.get(row.id);
    state.runs.set(row.id, row);
    if (row.status === "failed" && (!old || old.status !== "failed")) {
      var card = state.targets.get(row.kind + ":" + row.target);
      if (card && !card.errors.some(function (e) { return e.run === row.id; })) {
        card.errors.unshift({ run: row.id, message: row.error || "failed", at: row.finishedAt });
        card.errors = card.errors.slice(0, 3);
      }
    }
    if (state.watched) state.watched.onRow(row);
    if (!old && state.runs.size > MAX_KNOWN_RUNS) forgetOldRuns();
  }

  function forgetOldRuns() {
    var finished = [];
    state.runs.forEach(function (row) { if (!ACTIVE[row.status]) finished.push(row); });
    finished.sort(function (a, b) { return a.createdAt < b.createdAt ? -1 : 1; });
    var watched = state.watched ? state.watched.runId : null;
    finished.slice(0, state.runs.size - MAX_KNOWN_RUNS + 100).forEach(function (row) {
      if (row.id !== watched) state.runs.delete(row.id);
    });
  }

  function onSummary(summary) {
    if (!summary) return;
    state.summaries.push(summary);
    if (state.summaries.length > CHART_POINTS) state.summaries.shift();
    document.getElementById("s-active").textContent = fmtNum(summary.activeRuns);
    document.getElementById("s-rpm").textContent = fmtNum(summary.runsPerMinute);
    document.getElementById("s-tpm").textContent = fmtNum(summary.tokensPerMinute);
    document.getElementById("s-epm").textContent = fmtNum(summary.errorsPerMinute);
    document.getElementById("s-eph").textContent = fmtNum(summary.errorsLastHour);
    var latency = summary.latencyMs || {};
    document.getElementById("s-latency").textContent =
      latency.p50 === null || latency.p50 === undefined ? "–" : fmtMs(latency.p50) + " / " + fmtMs(latency.p95);
    document.getElementById("s-workers").textContent = fmtNum(summary.workers);
    onUsage(summary.usageToday);
    drawChart("chart-runs", [{ color: "#2f6fed", values: state.summaries.map(function (s) { return s.runsPerMinute; }) }]);
    drawChart("chart-latency", [
      { color: "#2f6fed", values: state.summaries.map(function (s) { return (s.latencyMs || {}).p50; }) },
      { color: "#e08a1e", values: state.summaries.map(function (s) { return (s.latencyMs || {}).p95; }) },
    ]);
  }

  // --- usage today: the same totals as the admin's usage page and GET /api/usage

  function fmtCost(amount, currency) {
    var value = Number(amount);
    return (value < 1 && value > 0 ? value.toFixed(4) : value.toFixed(2)) + " " + currency;
  }

  function usageRows(id, rows, currency) {
    var body = document.querySelector("#" + id + " tbody");
    while (body.firstChild) body.removeChild(body.firstChild);
    if (!rows.length) {
      body.appendChild(el("tr", {}, [el("td", { className: "muted", colspan: 4, text: "none yet" })]));
      return;
    }
    rows.forEach(function (row) {
      body.appendChild(el("tr", { dataset: { name: row.name } }, [
        el("td", { className: "mono", text: row.name }),
        el("td", { text: fmtNum(row.runs) }),
        el("td", { text: fmtNum(row.tokens) }),
        el("td", { className: "cost", text: fmtCost(row.cost, currency) }),
      ]));
    });
  }

  function onUsage(usage) {
    if (!usage) return;
    document.getElementById("u-cost").textContent = fmtCost(usage.cost, usage.currency);
    document.getElementById("u-tokens").textContent = fmtNum(usage.tokens);
    document.getElementById("u-cached").textContent = fmtNum(usage.cachedTokens);
    document.getElementById("u-runs").textContent = fmtNum(usage.runs);
    var unpriced = document.getElementById("u-unpriced");
    unpriced.hidden = !usage.unpricedRuns;
    unpriced.textContent = usage.unpricedRuns
      ? usage.unpricedRuns + " run(s) used a model with no price (counted at 0): add it in the admin's model prices."
      : "";
    usageRows("u-agents", usage.agents || [], usage.currency);
    usageRows("u-keys", usage.keys || [], usage.currency);
  }

  // --- charts: inline SVG polylines

  function drawChart(id, series) {
    var svg = document.getElementById(id);
    var width = 300, height = 90, pad = 12;
    var max = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v > max) max = v; }); });
    max = max || 1;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var ns = "http://www.w3.org/2000/svg";
    series.forEach(function (s) {
      var points = [];
      var n = s.values.length;
      s.values.forEach(function (v, i) {
        if (v === null || v === undefined) return;
        var x = width - (n - 1 - i) * (width / (CHART_POINTS - 1));
        var y = height - pad / 2 - (v / max) * (height - pad);
        points.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      var line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", points.join(" "));
      line.setAttribute("stroke", s.color);
      svg.appendChild(line);
    });
    document.getElementById(id + "-max").textContent = "max " + (id === "chart-latency" ? fmtMs(max) : fmtNum(max));
  }

  // --- rendering

  function render() {
    renderCards();
    renderRuns();
    renderWaiting();
  }

  // --- runs waiting for a person: approve, reject, edit the arguments, or answer

  function waitingInterrupts() {
    var items = [];
    state.runs.forEach(function (row) {
      if (row.status !== "interrupted") return;
      (row.interrupts || []).forEach(function (it) {
        if (it.status === "pending") items.push({ run: row, interrupt: it });
      });
    });
    items.sort(function (a, b) { return a.interrupt.createdAt < b.interrupt.createdAt ? -1 : 1; });
    return items;
  }

  function renderWaiting() {
    var box = document.getElementById("waiting-list");
    var items = waitingInterrupts();
    var keep = new Set();
    items.forEach(function (item) {
      keep.add(item.interrupt.id);
      if (!state.interruptNodes.has(item.interrupt.id)) {
        state.interruptNodes.set(item.interrupt.id, interruptCard(item.run, item.interrupt));
      }
    });
    state.interruptNodes.forEach(function (node, id) {
      if (!keep.has(id)) { node.remove(); state.interruptNodes.delete(id); }
    });
    // Move only what is out of place: a card taken out and put back would lose its focus.
    items.forEach(function (item, index) {
      var node = state.interruptNodes.get(item.interrupt.id);
      if (box.children[index] !== node) box.insertBefore(node, box.children[index] || null);
    });
    document.getElementById("waiting").hidden = items.length === 0;
    document.getElementById("waiting-count").textContent = String(items.length);
  }

  function dropInterrupt(runId, interruptId) {
    var row = state.runs.get(runId);
    if (row) row.interrupts = (row.interrupts || []).filter(function (it) { return it.id !== interruptId; });
    schedule();
  }

  function interruptCard(run, it) {
    var request = it.request || {};
    var allowed = !!body.dataset.mayResolve;
    var node = el("div", { className: "interrupt", dataset: { interruptId: it.id, runId: run.id, kind: it.kind } });
    var status = el("span", { className: "istatus muted" });
    var message = el("input", { type: "text", className: "imessage", placeholder: "message for the model (optional)", "aria-label": "message" });
    var buttons = [];
    node.appendChild(el("div", { className: "ihead" }, [
      el("span", { className: "badge interrupted", text: it.kind }),
      el("code", { text: shortId(run.id) }),
      el("span", { text: run.kind + ":" + run.target }),
      it.expiresAt ? el("span", { text: "expires " + new Date(it.expiresAt).toLocaleString() }) : null,
      el("a", { href: "#", text: "watch", onclick: function (ev) { ev.preventDefault(); watch(run.id); } }),
    ]));

    function post(fields) {
      buttons.forEach(function (b) { b.disabled = true; });
      node.classList.add("busy");
      status.className = "istatus muted";
      status.textContent = "sending…";
      fetch(body.dataset.resolveUrl.replace(ZERO_ID, encodeURIComponent(it.id)), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": body.dataset.csrf },
        body: JSON.stringify(Object.assign({ message: message.value }, fields)),
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) { return { ok: response.ok, data: data }; });
      }).then(function (result) {
        node.classList.remove("busy");
        if (result.ok) {
          status.textContent = result.data.interrupt ? result.data.interrupt.status : "resolved";
          if (result.data.run) upsertRun(result.data.run); // no longer pending: the card goes
          schedule();
          return;
        }
        var error = (result.data && result.data.error) || {};
        status.className = "istatus error-line";
        status.textContent = error.message || "not resolved";
        if (error.code === "already_resolved" || error.code === "not_interrupted" || error.code === "not_found") {
          setTimeout(function () { dropInterrupt(run.id, it.id); }, 4000); // decided elsewhere
        } else {
          buttons.forEach(function (b) { b.disabled = false; });
        }
      }).catch(function () {
        node.classList.remove("busy");
        status.className = "istatus error-line";
        status.textContent = "not sent: the server cannot be reached";
        buttons.forEach(function (b) { b.disabled = false; });
      });
    }

    function button(decision, label, className, fields) {
      var b = el("button", { type: "button", className: "small " + className, text: label, dataset: { decision: decision },
        disabled: !allowed, title: allowed ? null : "This needs the change permission on interrupts.",
        onclick: function () {
          var extra = fields ? fields() : {};
          if (extra === null) return;
          post(Object.assign({ decision: decision }, extra));
        } });
      buttons.push(b);
      return b;
    }

    if (it.kind === "question") {
      node.appendChild(el("div", { className: "isubject", text: request.question || "" }));
      if (request.schema) node.appendChild(el("pre", { className: "mono", text: JSON.stringify(request.schema) }));
      var answer = el("input", { type: "text", className: "ianswer", placeholder: "your answer", "aria-label": "answer" });
      node.appendChild(answer);
      node.appendChild(message);
      node.appendChild(el("div", { className: "iactions" }, [
        button("answer", "Answer", "", function () { return { answer: answer.value }; }),
        button("reject", "Reject", "danger"),
        status,
      ]));
    } else {
      // A workflow's approval step shows its message and data; a tool call, the tool's name.
      var subject = request.step ? request.step + ": " + (request.message || "") : "tool " + (request.tool || "?");
      node.appendChild(el("div", { className: "isubject", text: subject }));
      var original = JSON.stringify((request.step ? request.data : request.arguments) || {}, null, 2);
      var args = el("textarea", { className: "iargs", rows: Math.min(8, original.split("\n").length), "aria-label": "arguments" });
      args.value = original;
      node.appendChild(args);
      node.appendChild(message);
      // Approve runs the call as asked; with the arguments changed, it is an edit.
      var approve = button("approve", "Approve", "", function () {
        if (args.value.trim() === original.trim()) return {};
        try {
          return { decision: "edit", arguments: JSON.parse(args.value) };
        } catch (err) {
          status.className = "istatus error-line";
          status.textContent = "the arguments are not valid JSON";
          return null;
        }
      });
      args.addEventListener("input", function () {
        approve.textContent = args.value.trim() === original.trim() ? "Approve" : "Approve edited";
      });
      node.appendChild(el("div", { className: "iactions" }, [approve, button("reject", "Reject", "danger"), status]));
    }
    return node;
  }

  function activeCounts() {
    var counts = new Map();
    state.runs.forEach(function (row) {
      if (!ACTIVE[row.status]) return;
      var key = row.kind + ":" + row.target;
      counts.set(key, (counts.get(key) || 0) + 1);
    });
    return counts;
  }

  function renderCards() {
    var box = document.getElementById("cards");
    var counts = activeCounts();
    var nodes = [];
    state.targets.forEach(function (card, key) {
      var active = counts.get(key) || 0;
      var errors = (card.errors || []).map(function (e) {
        return el("div", { title: e.at || "" }, [
          el("a", { href: "#", text: shortId(e.run), onclick: function (ev) { ev.preventDefault(); watch(e.run); } }),
          " " + (e.message || "failed"),
        ]);
      });
      nodes.push(
        el("div", { className: "card", dataset: { target: key } }, [
          el("div", { className: "top" }, [
            el("span", { className: "name", text: card.name, title: card.description || card.id }),
            el("span", { className: "badge " + (active ? "busy" : ""), text: active ? "busy" : card.enabled ? "idle" : "disabled" }),
          ]),
          el("div", { className: "kind", text: card.kind + " · " + card.id + " · " + active + " active" }),
          errors.length ? el("div", { className: "errors" }, errors) : null,
        ])
      );
    });
    box.replaceChildren.apply(box, nodes);
  }

  function renderRuns() {
    var tbody = document.getElementById("runs-body");
    var watched = state.watched ? state.watched.runId : null;
    var rows = [];
    state.runs.forEach(function (row) { if (!row.parent) rows.push(row); });
    rows.sort(function (a, b) { return a.createdAt < b.createdAt ? 1 : -1; });
    var children = new Map();
    state.runs.forEach(function (row) { if (row.parent) children.set(row.parent, (children.get(row.parent) || 0) + 1); });
    var nodes = rows.slice(0, MAX_RUN_ROWS).map(function (row) {
      var actions = [];
      if (ACTIVE[row.status]) {
        actions.push(el("button", { className: "small danger", type: "button", text: "cancel",
          onclick: function (ev) { ev.stopPropagation(); send("cancel", { run: row.id }, reportError); } }));
      } else if (row.status === "failed" || row.status === "cancelled") {
        actions.push(el("button", { className: "small ghost", type: "button", text: "retry",
          onclick: function (ev) { ev.stopPropagation(); send("retry", { run: row.id }, function (f) { if (f.run) watch(f.run.id); reportError(f); }); } }));
      }
      var kids = children.get(row.id);
      return el("tr", { dataset: { runId: row.id, status: row.status }, className: row.id === watched ? "selected" : "",
        onclick: function () { watch(row.id); } }, [
        el("td", {}, [el("code", { text: shortId(row.id) })]),
        el("td", { text: row.kind + ":" + row.target + (kids ? " (+" + kids + ")" : "") }),
        el("td", {}, [el("span", { className: "status badge " + row.status, text: row.status })]),
        el("td", { className: "num duration", dataset: { runId: row.id }, text: fmtMs(duration(row)) }),
        el("td", { className: "num", text: fmtNum(row.inputTokens + row.outputTokens) }),
        el("td", { className: "input", text: row.error ? "⚠ " + row.error : row.input, title: row.error || row.input }),
        el("td", {}, actions),
      ]);
    });
    tbody.replaceChildren.apply(tbody, nodes);
  }

  function tickDurations() {
    document.querySelectorAll("td.duration").forEach(function (cell) {
      var row = state.runs.get(cell.dataset.runId);
      if (row && ACTIVE[row.status]) cell.textContent = fmtMs(duration(row));
    });
  }

  function renderTargetOptions() {
    var select = document.getElementById("start-target");
    var previous = select.value;
    // One group per run kind, in the order the cards come (the catalogue's order).
    var groups = new Map();
    state.targets.forEach(function (card) {
      if (!card.enabled) return;
      if (!groups.has(card.kind)) groups.set(card.kind, el("optgroup", { label: card.label || card.kind }));
      groups.get(card.kind).appendChild(el("option", { value: card.kind + ":" + card.id, text: card.name + " (" + card.id + ")" }));
    });
    select.replaceChildren.apply(select, Array.from(groups.values()));
    if (previous) select.value = previous;
  }

  function showStatus(text, isError) {
    var status = document.getElementById("start-status");
    status.textContent = text || "";
    status.className = isError ? "error-line" : "muted";
  }

  function reportError(frame) { if (frame && frame.type === "error") showStatus(frame.message, true); }

  // --- watching a run (and its children, nested)

  function RunView(runId, container, depth) {
    this.runId = runId;
    this.depth = depth;
    this.lastSeq = 0;
    this.ended = false;
    this.closedByUs = false;
    this.children = new Map();
    this.messages = new Map();
    this.tools = new Map();
    this.state = null;
    this.root = el("div", { className: "run-view depth-" + depth, dataset: { runId: runId } });
    this.head = el("div", { className: "rv-head" });
    this.status = el("span", { className: "badge rv-status", text: "connecting" });
    this.head.appendChild(this.status);
    if (depth > 0) this.head.appendChild(el("code", { text: shortId(runId) }));
    this.stream = el("div", { className: "rv-stream" });
    this.root.appendChild(this.head);
    this.root.appendChild(this.stream);
    container.appendChild(this.root);
    this.open();
  }

  RunView.prototype.open = function () {
    var self = this;
    var socket = new WebSocket(wsUrl(body.dataset.wsRuns + self.runId + "/?after=" + self.lastSeq));
    self.socket = socket;
    socket.onmessage = function (message) { self.onFrame(JSON.parse(message.data)); };
    socket.onclose = function (event) {
      if (self.ended || self.closedByUs) return;
      if (event.code >= 4400 && event.code < 4500) { self.note("closed: " + (event.reason || event.code), true); return; }
      setTimeout(function () { if (!self.closedByUs) self.open(); }, 1000); // resume after lastSeq
    };
  };

  RunView.prototype.close = function () {
    this.closedByUs = true;
    if (this.socket) this.socket.close();
    this.children.forEach(function (child) { child.view.close(); });
  };

  RunView.prototype.cancel = function () {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "cancel" }));
  };

  RunView.prototype.setStatus = function (status) {
    this.status.textContent = status;
    this.status.className = "badge rv-status " + status;
    if (this.depth === 0) {
      var top = document.getElementById("watch-status");
      top.textContent = status;
      top.className = "badge " + status;
      document.getElementById("watch-cancel").hidden = !ACTIVE[status];
    }
  };

  RunView.prototype.onRow = function (row) {
    if (row.id === this.runId && !this.ended) this.setStatus(row.status);
    this.children.forEach(function (child) { child.view.onRow(row); });
  };

  RunView.prototype.note = function (text, isError) {
    this.stream.appendChild(el("div", { className: isError ? "note error-line" : "note", text: text }));
  };

  RunView.prototype.onFrame = function (frame) {
    if (frame.type === "event") {
      if (frame.seq <= this.lastSeq) return; // never twice
      this.lastSeq = frame.seq;
      this.onEvent(frame.event);
    } else if (frame.type === "end") {
      this.ended = true;
      this.setStatus(frame.status);
    } else if (frame.type === "error") {
      this.note(frame.message, true);
    } else if (frame.type === "cancel_requested") {
      this.note("cancel requested");
    }
  };

  RunView.prototype.onEvent = function (e) {
    var self = this;
    switch (e.type) {
      case "RUN_STARTED":
        // A replayed start must not undo what a newer lifecycle row already said (interrupted…).
        if (!self.status.textContent || self.status.textContent === "queued") self.setStatus("running");
        break;
      case "TEXT_MESSAGE_START": {
        var box = el("div", { className: "msg open " + (e.role || "assistant"), dataset: { messageId: e.messageId } }, [
          el("span", { className: "who", text: e.role || "assistant" }),
        ]);
        var text = el("span", { className: "text" });
        box.appendChild(text);
        self.messages.set(e.messageId, { box: box, text: text });
        self.stream.appendChild(box);
        break;
      }
      case "TEXT_MESSAGE_CONTENT": {
        var m = self.messages.get(e.messageId);
        if (!m) { self.onEvent({ type: "TEXT_MESSAGE_START", messageId: e.messageId, role: "assistant" }); m = self.messages.get(e.messageId); }
        m.text.textContent += e.delta || "";
        break;
      }
      case "TEXT_MESSAGE_END": {
        var done = self.messages.get(e.messageId);
        if (done) done.box.classList.remove("open");
        break;
      }
      case "TOOL_CALL_START": {
        var args = el("pre", { className: "args mono" });
        var tool = el("div", { className: "tool open", dataset: { toolCallId: e.toolCallId } }, [
          el("span", { className: "tname", text: "tool " + e.toolCallName }),
          el("span", { className: "badge tstate", text: "calling" }),
          args,
        ]);
        self.tools.set(e.toolCallId, { box: tool, args: args, raw: "" });
        self.stream.appendChild(tool);
        break;
      }
      case "TOOL_CALL_ARGS": {
        var t = self.tools.get(e.toolCallId);
        if (t) { t.raw += e.delta || ""; t.args.textContent = t.raw; }
        break;
      }
      case "TOOL_CALL_END": {
        var c = self.tools.get(e.toolCallId);
        if (c) {
          c.box.classList.remove("open");
          c.box.classList.add("closed");
          c.args.textContent = pretty(c.raw);
          c.box.querySelector(".tstate").textContent = "called";
        }
        break;
      }
      case "TOOL_CALL_RESULT": {
        var r = self.tools.get(e.toolCallId);
        var content = typeof e.content === "string" ? e.content : JSON.stringify(e.content);
        var result = el("pre", { className: "result mono", text: "→ " + content });
        if (r) { r.box.appendChild(result); r.box.querySelector(".tstate").textContent = "done"; }
        else self.stream.appendChild(result);
        break;
      }
      case "STEP_STARTED":
        self.stream.appendChild(el("div", { className: "step", dataset: { step: e.stepName }, text: "▶ step " + e.stepName }));
        break;
      case "STEP_FINISHED":
        self.stream.appendChild(el("div", { className: "step", text: "■ step " + e.stepName + " finished" }));
        break;
      case "SUBAGENT_STARTED": {
        var childId = e.runId || e.subagentRunId;
        var title = (e.member || e.stepName || e.agentId || "child") + " → " + (e.kind || "agent") + ":" + (e.agentId || e.target || e.starId || e.workflowId || "");
        var frame = el("div", { className: "child", dataset: { childRunId: childId || "" } }, [el("div", { className: "ctitle", text: title })]);
        if (e.instruction) frame.appendChild(el("div", { className: "note", text: e.instruction }));
        self.stream.appendChild(frame);
        if (childId && self.depth < MAX_DEPTH && !self.children.has(childId)) {
          self.children.set(childId, { frame: frame, view: new RunView(childId, frame, self.depth + 1) });
        }
        break;
      }
      case "SUBAGENT_FINISHED":
      case "SUBAGENT_ERROR": {
        var child = self.children.get(e.runId || e.subagentRunId);
        if (child && e.type === "SUBAGENT_ERROR") child.frame.appendChild(el("div", { className: "note error-line", text: e.message || "failed" }));
        break;
      }
      case "STATE_SNAPSHOT":
        self.state = e.snapshot;
        self.showState();
        break;
      case "STATE_DELTA":
        self.state = applyPatch(self.state, e.delta || []);
        self.showState();
        break;
      case "CUSTOM":
        if (e.name === "star.message" && e.value) {
          self.note((e.value.from || "?") + " → " + (e.value.to || "?") + ": " + (e.value.text || e.value.content || ""));
        } else if (e.name === "asteros.interrupt" && e.value) {
          var asked = (e.value.interrupts || []).map(function (it) {
            var r = it.request || {};
            return it.kind === "question" ? "“" + (r.question || "") + "”" : "tool " + (r.tool || it.decision || "?");
          });
          var pending = e.value.status === "pending";
          self.note(pending ? "waiting for a person: " + asked.join(", ") : "resumed after a decision");
          var now = self.status.textContent;
          if (pending && (!now || ACTIVE[now])) self.setStatus("interrupted");
          else if (!pending && now === "interrupted") self.setStatus("running");
        } else if (e.name !== "star.started") {
          self.note(e.name);
        }
        break;
      case "RUN_FINISHED":
        self.setStatus(e.outcome === "cancelled" ? "cancelled" : "succeeded");
        if (e.outcome === "interrupt") self.note("waiting for the client's tool results");
        break;
      case "RUN_ERROR":
        self.setStatus("failed");
        self.note((e.code ? e.code + ": " : "") + e.message, true);
        break;
    }
  };

  RunView.prototype.showState = function () {
    if (!this.stateBox) {
      this.stateBox = el("details", { className: "state", open: true }, [el("summary", { text: "state" }), el("pre", { className: "mono" })]);
      this.root.insertBefore(this.stateBox, this.stream);
    }
    this.stateBox.querySelector("pre").textContent = JSON.stringify(this.state, null, 2);
  };

  // RFC 6902, the operations workflows send (add, replace, remove, move, copy); test is a no-op.
  function applyPatch(doc, ops) {
    var root = { v: JSON.parse(JSON.stringify(doc === undefined ? null : doc)) };
    function parts(path) { return path === "" ? [] : path.slice(1).split("/").map(function (p) { return p.replace(/~1/g, "/").replace(/~0/g, "~"); }); }
    function parent(path) {
      var keys = ["v"].concat(parts(path));
      var node = root;
      for (var i = 0; i < keys.length - 1; i++) node = node[keys[i]];
      return { node: node, key: keys[keys.length - 1] };
    }
    function get(path) { var p = parent(path); return p.node[p.key]; }
    function put(path, value, insert) {
      var p = parent(path);
      if (Array.isArray(p.node)) {
        var index = p.key === "-" ? p.node.length : Number(p.key);
        if (insert) p.node.splice(index, 0, value); else p.node[index] = value;
      } else p.node[p.key] = value;
    }
    function drop(path) {
      var p = parent(path);
      if (Array.isArray(p.node)) p.node.splice(Number(p.key), 1); else delete p.node[p.key];
    }
    try {
      ops.forEach(function (op) {
        if (op.op === "add") put(op.path, op.value, true);
        else if (op.op === "replace") put(op.path, op.value, false);
        else if (op.op === "remove") drop(op.path);
        else if (op.op === "copy") put(op.path, JSON.parse(JSON.stringify(get(op.from))), true);
        else if (op.op === "move") { var v = get(op.from); drop(op.from); put(op.path, v, true); }
      });
    } catch (err) { return doc; }
    return root.v;
  }

  function watch(runId) {
    if (!runId) return;
    if (state.watched) state.watched.close();
    var container = document.getElementById("watch-body");
    container.replaceChildren();
    document.getElementById("watch-title").textContent = runId;
    var admin = document.getElementById("watch-admin");
    admin.href = body.dataset.adminRuns + runId + "/change/";
    admin.hidden = false;
    state.watched = new RunView(runId, container, 0);
    var row = state.runs.get(runId);
    if (row) state.watched.setStatus(row.status);
    var url = new URL(location.href);
    url.searchParams.set("run", runId);
    history.replaceState(null, "", url);
    schedule();
  }

  // --- wiring

  document.getElementById("start-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var choice = document.getElementById("start-target").value;
    var text = document.getElementById("start-input").value.trim();
    if (!choice) { showStatus("Nothing to run yet.", true); return; }
    if (!text) { showStatus("Type an input first.", true); return; }
    var split = choice.indexOf(":");
    showStatus("starting…");
    send("start", {
      kind: choice.slice(0, split),
      target: choice.slice(split + 1),
      input: text,
      session: document.getElementById("start-session").value.trim() || null,
    }, function (frame) {
      if (frame.type === "started") { showStatus("started " + shortId(frame.run.id)); watch(frame.run.id); }
      else reportError(frame);
    });
  });

  document.getElementById("watch-cancel").addEventListener("click", function () {
    if (state.watched) state.watched.cancel();
  });

  setInterval(tickDurations, 1000);
  connect(0);
  if (body.dataset.initialRun) watch(body.dataset.initialRun);
})();
