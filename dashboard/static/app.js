// upbit-trader status page: polls /api/status and /api/series, renders with textContent only.
"use strict";

(() => {
  const POLL_MS = Math.max(100, parseInt(document.querySelector('meta[name="poll-ms"]').content, 10) || 2000);
  const $ = (id) => document.getElementById(id);
  const state = { status: null, statusAt: null, dbDownSince: null, serverDownSince: null, market: null,
                  priceChart: null, equityChart: null, seriesKey: "", inFlight: false };

  // ---- DOM helpers --------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "title") node.title = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const td = (content, cls, title) => el("td", { class: cls, title }, content);
  function fillBody(table, rows, emptyText, columns) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty-row" }, el("td", { colSpan: columns }, emptyText))]));
  }
  const pill = (cls, text) => el("span", { class: `pill ${cls}` }, el("span", { class: "dot" }), text);
  function setPill(node, cls, text) { node.className = `pill ${cls}`; node.replaceChildren(el("span", { class: "dot" }), text); }

  // ---- formatting ---------------------------------------------------------------------------
  const nf0 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const nf2 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const num = (v, digits) => (v === null || v === undefined ? "—" :
    (digits === undefined ? (Math.abs(v) >= 100 ? nf0 : nf2) : new Intl.NumberFormat("en-US", { maximumFractionDigits: digits })).format(v));
  const krw = (v) => (v === null || v === undefined ? "—" : `${v > 0 ? "+" : v < 0 ? "−" : ""}${nf0.format(Math.abs(v))} KRW`);
  const signClass = (v) => (v > 0 ? "pos" : v < 0 ? "neg" : "");
  function age(s) {
    if (s === null || s === undefined) return "—";
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")} s`;
    if (s < 86400 * 2) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }
  function time(iso, withDate) {
    if (!iso) return "—";
    const d = new Date(iso);
    const t = d.toISOString();
    return withDate ? `${t.slice(0, 10)} ${t.slice(11, 19)}` : t.slice(11, 23);
  }
  const epochTime = (s) => (s === null || s === undefined ? "—" : new Date(s * 1000).toISOString().replace("T", " ").slice(0, 19));

  // ---- header, banners ----------------------------------------------------------------------
  function renderHeader(st) {
    const root = st.system ? st.system.root : null;
    $("mode").textContent = root && root.mode ? root.mode : (root ? "mode not reported (the system is not running)" : "no system has run on this database yet");
    const h = st.health;
    const box = $("health");
    box.dataset.ok = h ? String(h.ok) : "unknown";
    box.title = h ? h.reasons.join("\n") || h.reason : "";
    box.querySelector(".text").textContent = h ? (h.ok ? (h.reason === "healthy" ? "Healthy" : `Healthy · ${h.reason.replace(/^healthy; /, "")}`) : `Unhealthy · ${h.reason}`) : "unknown";
  }

  function renderBanners() {
    const out = [];
    const now = Date.now();
    if (state.serverDownSince) {
      out.push(el("div", { class: "banner error", id: "server-banner" }, el("strong", {}, "Dashboard server unreachable"),
        el("span", {}, `since ${new Date(state.serverDownSince).toISOString().slice(11, 19)} UTC — retrying every ${POLL_MS / 1000} s. ` +
          (state.statusAt ? `Showing data from ${Math.round((now - state.statusAt) / 1000)} s ago.` : ""))));
    }
    if (state.serverError) {
      out.push(el("div", { class: "banner error", id: "error-banner" }, el("strong", {}, "Dashboard error"), el("span", {}, state.serverError)));
    }
    const skew = state.status && state.status.database ? state.status.database.clock_skew_s : 0;
    if (!state.dbDown && Math.abs(skew) > 2) {
      out.push(el("div", { class: "banner warn", id: "skew-banner" }, el("strong", {}, "Clock skew"),
        el("span", {}, `the database server's clock is ${age(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} this process: heartbeat ages are off by that much.`)));
    }
    if (state.dbDown) {
      out.push(el("div", { class: "banner error", id: "db-banner" }, el("strong", {}, "Database unreachable"),
        el("span", {}, `since ${new Date(state.dbDownSince).toISOString().slice(11, 19)} UTC: ${state.dbDown}. ` +
          (state.statusAt ? `Everything below is the last data read, ${Math.round((now - state.statusAt) / 1000)} s ago.` : "Nothing has been read yet."))));
    }
    const st = state.status;
    if (st && st.system && !state.dbDown) {
      const root = st.system.root;
      if (root.state === "stopped") {
        out.push(el("div", { class: "banner warn", id: "system-banner" }, el("strong", {}, "The system is not running"),
          el("span", {}, "No root holds the system lock on this database. Below is what it last recorded" +
            (root.heartbeat_age_s !== null ? ` (last heartbeat ${age(root.heartbeat_age_s)} ago).` : "."))));
      } else if (root.state === "unresponsive") {
        out.push(el("div", { class: "banner error", id: "system-banner" }, el("strong", {}, "The root is not responding"), el("span", {}, root.why)));
      }
    }
    $("banners").replaceChildren(...out);
    document.querySelectorAll(".card").forEach((c) => c.classList.toggle("stale", Boolean(state.dbDown || state.serverDownSince)));
  }

  function renderUpdated() {
    $("updated").textContent = state.statusAt ? `updated ${age((Date.now() - state.statusAt) / 1000)} ago` : "no data yet";
  }

  // ---- supervisor tree ----------------------------------------------------------------------
  function stateCell(s, why) {
    return el("td", { class: "nowrap" }, pill(s, s));
  }
  function renderTree(sys) {
    const rows = [];
    const r = sys.root;
    rows.push(el("tr", { class: "root", "data-node": "root", "data-state": r.state },
      el("td", {}, "root", r.why ? el("span", { class: "why" }, r.why) : null), stateCell(r.state),
      td(r.pid ?? "—", "num mono"), td("—", "num faint"), td("—", "num faint"),
      td(r.uptime_s !== null ? age(r.uptime_s) : "—", "num"), td("", "num"),
      td(r.heartbeat_age_s !== null ? `♥ ${age(r.heartbeat_age_s)}` : "—", "num muted", "time since the root's last heartbeat"),
      td(r.lock_held ? "lock held" : "no lock", `num ${r.lock_held ? "muted" : "neg"}`)));
    sys.nodes.forEach((n, i) => {
      const last = i === sys.nodes.length - 1;
      let why = n.why;
      let recent = false;
      if (!why && n.last_exit && n.last_exit.restarted_at && n.last_exit.age_s < 600) {
        recent = true;
        why = `restarted ${age(n.last_exit.age_s)} ago after ${n.last_exit.reason}` +
          (n.last_exit.down_for_s !== null ? ` (down ${age(n.last_exit.down_for_s)})` : "");
      }
      rows.push(el("tr", { class: `node${recent ? " recent-exit" : ""}`, "data-node": n.node, "data-state": n.state, "data-incarnation": n.incarnation },
        el("td", {}, el("span", { class: "branch" }, last ? "└─" : "├─"), `${n.node} node`, why ? el("span", { class: "why" }, why) : null),
        stateCell(n.state), td(n.pid ?? "—", "num mono"), td(n.incarnation, "num"),
        td(n.restarts, `num ${n.restarts > 0 ? "neg" : ""}`), td(n.uptime_s !== null ? age(n.uptime_s) : "—", "num"),
        td("", "num"), td(n.report_age_s !== null ? `report ${age(n.report_age_s)}` : "—", "num muted", "time since this node last reported its actors"), td("", "num")));
      n.actors.forEach((a, j) => {
        const glyph = (last ? "   " : "│  ") + (j === n.actors.length - 1 ? "└─" : "├─");
        rows.push(el("tr", { class: "actor", "data-actor": `${n.node}/${a.actor}`, "data-state": a.state },
          el("td", {}, el("span", { class: "branch" }, glyph), a.actor, a.why ? el("span", { class: "why" }, a.why) : null),
          stateCell(a.state), td("", "num"), td(a.incarnation, "num"), td(a.restarts, `num ${a.restarts > 0 ? "neg" : ""}`),
          td("", "num"), td(num(a.mailbox, 0), `num ${a.mailbox > 100 ? "neg" : ""}`),
          td(a.last_message_age_s !== null ? age(a.last_message_age_s) : "never", "num"), td(num(a.processed, 0), "num")));
      });
    });
    if (!sys.nodes.length) rows.push(el("tr", { class: "empty-row" }, el("td", { colSpan: 9 }, "no node has registered on this database")));
    $("tree").tBodies[0].replaceChildren(...rows);
    const down = sys.nodes.filter((n) => n.state !== "running").length;
    $("tree-hint").textContent = sys.nodes.length ? `${sys.nodes.length - down}/${sys.nodes.length} nodes running` : "";
  }

  // ---- feed ---------------------------------------------------------------------------------
  function kpi(label, value, detail, cls, title) {
    return el("div", { class: "kpi", title }, el("div", { class: "label" }, label), el("div", { class: `value ${cls || ""}` }, value),
      detail ? el("div", { class: "detail" }, detail) : null);
  }

  // what flows through the pipeline, from each actor's own counters
  const STAGES = [
    ["feed", "trades", "trades in"], ["bar", "bars", "bars"], ["strategy", "signals", "signals"],
    ["paper", "fills", "paper fills"], ["execution", "attempts", "attempts"], ["notifier", "delivered", "alerts sent"]];
  function renderPipeline(sys) {
    const actors = {};
    sys.nodes.forEach((n) => n.actors.forEach((a) => { actors[a.actor] = a; }));
    const stages = STAGES.filter(([name]) => actors[name]).map(([name, key, label], i) => {
      const a = actors[name];
      const v = a.counters ? a.counters[key] : undefined;
      return el("div", { class: `stage ${a.state}`, "data-stage": name, title: `${name} actor: ${a.state}, mailbox ${a.mailbox}` },
        el("div", { class: "stage-name" }, name),
        el("div", { class: "stage-value" }, typeof v === "number" ? num(v, 0) : "—"),
        el("div", { class: "stage-label" }, label),
        el("div", { class: `stage-mailbox ${a.mailbox > 0 ? "busy" : ""}` }, `mailbox ${num(a.mailbox, 0)}`));
    });
    const out = [];
    stages.forEach((s, i) => { if (i) out.push(el("div", { class: "arrow" }, "→")); out.push(s); });
    $("pipeline").replaceChildren(...out);
  }
  function renderFeed(f) {
    setPill($("feed-state"), f.state.replace(" ", "-"), f.state);
    const kind = f.kind === "replay" ? "replay" : f.kind === "live" ? "live" : "—";
    $("feed-kpis").replaceChildren(
      kpi("Trades / s", f.trades_per_s === null ? "—" : num(f.trades_per_s, 1), `${num(f.trades_total, 0)} this run`),
      kpi("Bars stored", num(f.bars_total, 0), "this run"),
      kpi("Late trades", num(f.late_trades, 0), `${num(f.amended_bars_1h, 0)} bars amended`, null, "late trades this run; bars they amended in the last hour of data"),
      kpi("Last stored", `${age(f.last_write_age_s)}`, kind === "—" ? "" : `${kind} feed`),
    );
    const replay = f.kind === "replay";
    $("lag-head").textContent = replay ? "Replay" : "Lag";
    const rows = f.markets.map((m) => el("tr", { "data-market": m.market },
      td(m.market, "mono"), td(m.last_bar_ts ? time(m.last_bar_ts, true) : "—", "nowrap"), td(num(m.last_close), "num"),
      td(replay ? "recorded" : age(m.lag_s), `num ${!replay && m.lag_s > 10 ? "neg" : ""}`),
      td(`${age(m.stored_age_s)} ago`, "num muted")));
    fillBody("feed-markets", rows, "no market has stored a bar yet", 5);
    const notes = [];
    if (f.why) notes.push(f.why);
    if (replay && f.newest_bar_ts) notes.push(`Replay clock ${time(f.newest_bar_ts, true)} UTC: bars carry the recording's times.`);
    if (f.name) notes.push(`Source ${f.name}.`);
    if (f.kind === "live") notes.push(`WebSocket ${f.connected ? "connected" : "disconnected"}, ${f.sessions ?? 0} session(s).`);
    if (f.skipped_trades) notes.push(`${num(f.skipped_trades, 0)} already-applied trades skipped after a restart.`);
    $("feed-note").textContent = notes.join(" ");
  }

  // ---- money --------------------------------------------------------------------------------
  function renderBook(p) {
    const money = (label, v, detail) => kpi(label, krw(v), detail, signClass(v));
    $("book-kpis").replaceChildren(
      money("Realised PnL", p.realised, "net of fees"),
      money("Unrealised PnL", p.unrealised, "open positions, net of entry fee"),
      money("Total", p.total, `${num(p.paper_trades, 0)} paper fills`),
      kpi("Fees paid", `${nf0.format(p.fees)} KRW`, "simulated"),
    );
    const rows = p.positions.map((x) => el("tr", { "data-market": x.market },
      td(x.market, "mono"), td(x.volume > 0 ? num(x.volume, 8) : "flat", `num ${x.volume > 0 ? "" : "faint"}`),
      td(x.volume > 0 ? num(x.avg_price) : "—", "num"), td(num(x.last_price), "num"),
      td(x.volume > 0 ? krw(x.unrealised) : "—", `num ${signClass(x.unrealised)}`)));
    fillBody("positions", rows, "no paper position yet", 5);
    $("book-hint").textContent = "paper trading";
  }

  // ---- execution ----------------------------------------------------------------------------
  function renderExecution(x) {
    $("exec-mode").textContent = x.mode ? `${x.mode} mode` : "no attempt yet";
    $("status-counts").replaceChildren(...Object.entries(x.counts_24h).map(([s, n]) =>
      el("span", { class: `count ${n ? "" : "zero"}`, "data-status": s }, el("span", { class: `badge ${s}` }, s), el("span", { class: "n" }, num(n, 0)))),
      el("span", { class: "count", title: "attempts in the last 24 hours" }, el("span", { class: "label" }, "24 h"), el("span", { class: "n" }, num(x.total_24h, 0))));
    const rows = x.attempts.map((a) => {
      const order = a.ord_type === "price" ? `${a.ord_type} · ${num(Number(a.price))} KRW` :
        a.ord_type === "market" ? `${a.ord_type} · ${a.volume}` : [a.ord_type, a.price, a.volume].filter(Boolean).join(" · ");
      const problems = [...a.blocked_reasons, ...(a.error ? [a.error] : [])];
      return el("tr", { "data-attempt-id": a.id, "data-status": a.status },
        td(a.id, "num mono"), td(time(a.created_at), "nowrap"), td(a.paper_trade_id, "num mono"), td(a.market, "mono"),
        td(el("span", { class: `badge ${a.side}` }, a.side)), td(order, "nowrap"), td(a.mode),
        td(el("span", { class: `badge ${a.status}` }, a.status)),
        td(problems.length ? problems.join("; ") : "—", problems.length ? "wrap neg" : "faint"), td(a.identifier, "mono nowrap"));
    });
    fillBody("attempts", rows, "no order attempt yet: attempts appear when the paper book trades", 10);
    const reasons = x.blocked_reasons_24h;
    const box = $("reasons-chart");
    if (!reasons.length) {
      const logged = x.counts_24h.logged || 0;
      const detail = x.total_24h === 0 ? "No order attempt in the last 24 hours." :
        logged === x.total_24h ? `All ${num(x.total_24h, 0)} attempts were logged: recorded, never sent${x.mode === "shadow" ? " (shadow mode)" : ""}.` :
          `${num(x.total_24h, 0)} attempts, none blocked.`;
      box.replaceChildren(el("div", { class: "empty-state", id: "reasons-empty" }, el("div", { class: "big" }, "✓"),
        el("div", { class: "title" }, "Nothing blocked in the last 24 h"), el("div", {}, detail)));
    } else {
      const max = Math.max(...reasons.map((r) => r.count));
      box.replaceChildren(...reasons.map((r) => el("div", { class: "bar-row", "data-reason": r.reason },
        el("div", { class: "label" }, r.reason), el("div", { class: "track" }, el("div", { class: "fill", style: `width:${(100 * r.count / max).toFixed(1)}%` })),
        el("div", { class: "n" }, num(r.count, 0)))));
    }
  }

  // ---- execution and account sections (dashboard/sections.py) ------------------------------
  // A generic table: columns are [label, class] pairs, rows are arrays of cells (a <td> or a value).
  function table(columns, rows, emptyText, attrs) {
    const head = el("tr", {}, ...columns.map(([label, cls]) => el("th", { class: cls }, label)));
    const body = rows.length ? rows : [el("tr", { class: "empty-row" }, el("td", { colSpan: columns.length }, emptyText))];
    return el("div", { class: "table-wrap scroll" }, el("table", attrs || {}, el("thead", {}, head), el("tbody", {}, ...body)));
  }
  const row = (attrs, ...cells) => el("tr", attrs, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : td(c))));
  const dash = (v) => (v === null || v === undefined || v === "" ? "—" : v);
  const SPANS = { guards: "span-8", breakers: "span-4", throttling: "span-4", account: "span-8", reconciliation: "span-12",
                  safety: "span-12" };

  function sectionCard(s, headExtra, ...content) {
    return el("section", { class: `card available ${SPANS[s.key] || "span-12"}`, "data-section": s.key },
      el("div", { class: "card-head" }, el("h2", {}, s.title), headExtra), ...content);
  }
  const note = (text, cls) => (text ? el("p", { class: `note ${cls || ""}`, "data-note": "" }, text) : null);

  function renderGuards(s) {
    const mode = s.mode ? `${s.mode} mode` : "mode not reported";
    const head = el("span", { class: "head-pills" }, pill(s.mode ? (s.downgraded ? "warn" : "ok") : "neutral", mode));
    const kpis = el("div", { class: "kpis" },
      kpi("Effective mode", dash(s.mode), s.actor_state ? `execution actor ${s.actor_state}` : "execution actor not reported", s.downgraded ? "warn-text" : ""),
      kpi("Requested mode", dash(s.requested_mode), s.downgraded ? "downgraded" : "every guard agrees"),
      el("div", { class: "kpi wide", id: "mode-reasons" }, el("div", { class: "label" }, "Downgraded because"),
        el("div", { class: "value small" }, s.mode_reasons.length ? s.mode_reasons.join(", ") : "—")));
    const switches = el("div", { class: "switches" }, ...s.switches.map((w) => el("div",
      { class: `switch ${w.active ? "on" : "off"}`, "data-switch": w.name, "data-active": String(w.active),
        title: w.set ? `set ${time(w.updated_at, true)} UTC by ${w.updated_by}` : "never set" },
      el("span", { class: "name" }, w.name), el("span", { class: "text" }, w.text))));
    const events = table([["Time (UTC)"], ["Kind"], ["Detail"]], s.events.map((e) => row({ "data-event-id": e.id, "data-kind": e.kind },
      td(time(e.at, true), "nowrap"), td(el("span", { class: `badge ${e.kind}` }, e.kind.replaceAll("_", " ")), "nowrap"), td(e.text || "—", "wrap muted"))),
      "no execution event recorded", { id: "execution-events" });
    let reasons;
    if (!s.blocked_reasons.length) {
      reasons = el("div", { class: "empty-state small" }, el("div", { class: "title" }, "No blocked reason"),
        el("div", {}, s.attempts_considered ? `in the last ${num(s.attempts_considered, 0)} attempts` : "no attempt yet"));
    } else {
      const max = Math.max(...s.blocked_reasons.map((r) => r.count));
      reasons = el("div", {}, ...s.blocked_reasons.map((r) => el("div", { class: `bar-row ${r.kind}`, "data-reason": r.reason },
        el("div", { class: "label" }, r.reason, el("span", { class: `kind ${r.kind}` }, r.kind === "downgrade" ? "mode downgraded" : r.kind === "stop" ? "stopped" : "")),
        el("div", { class: "track" }, el("div", { class: "fill", style: `width:${(100 * r.count / max).toFixed(1)}%` })),
        el("div", { class: "n" }, num(r.count, 0)))));
    }
    return sectionCard(s, head, kpis, el("h3", {}, "Switches ", el("span", { class: "sub" }, "system_flags")), switches,
      el("div", { class: "split" },
        el("div", { class: "grow" }, el("h3", {}, "Execution events ", el("span", { class: "sub" }, "newest first")), events),
        el("div", { class: "reasons", id: "guard-reasons" }, el("h3", {}, "Blocked reasons ",
          el("span", { class: "sub" }, `last ${num(s.attempts_considered, 0)} attempts`)), reasons)));
  }

  function renderBreakers(s) {
    const open = s.open.length;
    const head = !s.breakers.length ? pill("neutral", "n/a") :
      pill(open ? "error" : (s.current ? "ok" : "neutral"), open ? `${open} not closed` : "all closed");
    const rows = s.breakers.map((b) => row({ "data-breaker": b.group, "data-state": b.state },
      td(b.group, "mono"), td(el("span", { class: `badge breaker-${b.state}` }, b.state))));
    return sectionCard(s, head, table([["Endpoint group"], ["State"]], rows, "no breaker reported", { id: "breakers" }),
      note(s.note, s.current ? "" : "warn-text"),
      s.report_age_s !== null && s.breakers.length ? note(`reported ${age(s.report_age_s)} ago by the execution actor (${s.actor_state})`) : null);
  }

  function renderThrottling(s) {
    const head = pill(s.last_24h ? "warn" : "ok", s.last_24h ? `${num(s.last_24h, 0)} in 24 h` : "none");
    if (!s.last_24h) {
      return sectionCard(s, head, el("div", { class: "empty-state", id: "no-throttling" }, el("div", { class: "big" }, "✓"),
        el("div", { class: "title" }, "No throttling"), el("div", {}, s.note)));
    }
    const kpis = el("div", { class: "kpis three" }, kpi("Last hour", num(s.last_hour, 0)), kpi("Last 24 h", num(s.last_24h, 0)),
      kpi("Latest", s.last_at ? time(s.last_at).slice(0, 8) : "—", s.last_at ? `${time(s.last_at, true).slice(0, 10)} UTC` : ""));
    const rows = s.recent.map((a) => row({ "data-attempt-id": a.id },
      td(time(a.created_at), "nowrap"), td(a.market, "mono"), td(a.mode), td(el("span", { class: `badge ${a.status}` }, a.status)),
      td([...a.blocked_reasons, ...(a.error ? [a.error] : [])].join("; ") || "—", "wrap muted")));
    return sectionCard(s, head, kpis, table([["Time (UTC)"], ["Market"], ["Mode"], ["Status"], ["Reasons / error"]], rows, "none", { id: "throttled" }));
  }

  function renderAccount(s) {
    const head = el("span", { class: "hint" }, s.taken_at ? `snapshot ${time(s.taken_at, true)} UTC, ${age(s.age_s)} ago` : "no snapshot");
    const balances = s.balances.map((b) => row({ "data-currency": b.currency, class: b.in_latest ? "" : "gone" },
      td(b.currency, "mono"), td(num(b.balance, 8), "num"), td(num(b.locked, 8), `num ${b.locked ? "" : "faint"}`),
      td(b.avg_buy_price ? num(b.avg_buy_price) : "—", "num"),
      td(b.in_latest ? "latest" : `not held since ${time(b.taken_at, true)}`, b.in_latest ? "muted nowrap" : "faint nowrap")));
    const positions = s.positions.map((p) => row({ "data-market": p.market, title: `updated ${time(p.updated_at, true)} UTC` },
      td(p.market, "mono"), td(num(p.volume, 8), "num"), td(num(p.locked, 8), `num ${p.locked ? "" : "faint"}`),
      td(num(p.avg_buy_price), "num"), td(`${nf0.format(p.cost_krw)} KRW`, "num")));
    return sectionCard(s, head, el("div", { class: "split even" },
      el("div", { class: "grow" }, el("h3", {}, "Balances ", el("span", { class: "sub" }, "latest snapshot of each currency")),
        table([["Currency"], ["Balance", "num"], ["Locked", "num"], ["Avg buy price", "num"], ["Snapshot"]], balances, "no balance snapshot", { id: "balances" })),
      el("div", { class: "grow" }, el("h3", {}, "Live positions ", el("span", { class: "sub" }, "held on the exchange now")),
        table([["Market"], ["Volume", "num"], ["Locked", "num"], ["Avg buy price", "num"], ["Cost", "num"]], positions, "no live position", { id: "live-positions" }))),
      note(s.note), s.last_error ? note(`last error: ${s.last_error}`, "neg") : null);
  }

  function reportResult(r) {
    if (r.error) return ["warn", "error"];
    return r.ok ? ["ok", "ok"] : ["error", "differences"];
  }

  function renderReconciliation(s) {
    const pills = [];
    const latest = s.latest;
    if (!latest) pills.push(pill("neutral", "none yet"));
    else {
      const [cls] = reportResult(latest);
      pills.push(pill(cls, latest.error ? "latest failed" : latest.ok ? "latest ok" : `${latest.differences_count} difference(s)`));
    }
    if (s.halt && s.halt.active) pills.push(pill("error", "entries halted"));
    const rows = s.reports.map((r) => {
      const [, text] = reportResult(r);
      return row({ "data-report-id": r.id, "data-ok": String(r.ok) },
        td(r.id, "num mono"), td(time(r.at, true), "nowrap"), td(r.trigger), td(el("span", { class: `badge result-${text}` }, text)),
        td(r.error ? r.error : (r.differences_text || "—"), r.error || r.differences_count ? "wrap neg" : "faint"),
        td(num(r.unknown_orders, 0), `num ${r.unknown_orders ? "neg" : "faint"}`), td(num(r.missing_orders, 0), `num ${r.missing_orders ? "neg" : "faint"}`),
        td(r.halted ? "halted" : "—", r.halted ? "neg" : "faint"));
    });
    return sectionCard(s, el("span", { class: "head-pills" }, ...pills),
      table([["#", "num"], ["Time (UTC)"], ["Trigger"], ["Result"], ["Differences"], ["Unknown orders", "num"], ["Missing orders", "num"], ["Entries"]],
        rows, "no reconciliation yet", { id: "reconciliations" }),
      s.halt && s.halt.active ? note(`${s.halt.text} (set by ${s.halt.updated_by}; exits still go through; ctl reconcile after resolving it)`, "neg") : null);
  }

  function renderSafety(s) {
    const waiting = s.pending.length + s.review.length;
    const head = el("span", { class: "head-pills" }, waiting ? pill("error", `${waiting} waiting`) : pill("ok", "nothing waiting"));
    const pending = s.pending.map((p) => row({ "data-paper-trade-id": p.paper_trade_id },
      td(p.paper_trade_id, "num mono"), td(p.market, "mono"), td(p.mode), td(`${time(p.since, true)} (${age(p.age_s)})`, "nowrap"),
      td(num(p.tries, 0), "num"), td(p.reason, "wrap neg"), td(time(p.next_at, true), "nowrap")));
    const review = s.review.map((r) => row({ "data-attempt-id": r.attempt_id },
      td(r.attempt_id, "num mono"), td(r.identifier, "mono nowrap"), td(r.market, "mono"), td(el("span", { class: `badge ${r.side}` }, r.side)),
      td(`unknown for ${age(r.age_s)}`, "neg nowrap"), td(`ctl review ${r.attempt_id} placed|absent`, "mono")));
    return sectionCard(s, head, el("div", { class: "split even" },
      el("div", { class: "grow" }, el("h3", {}, "Exits pending ", el("span", { class: "sub" }, "not executed yet: retried until they are")),
        table([["Paper trade", "num"], ["Market"], ["Mode"], ["Pending since"], ["Tries", "num"], ["Why"], ["Next try"]], pending, "no exit pending", { id: "pending-exits" })),
      el("div", { class: "grow" }, el("h3", {}, "Needs review ", el("span", { class: "sub" }, "outcome unknown after every lookup")),
        table([["Attempt", "num"], ["Identifier"], ["Market"], ["Side"], ["Since"], ["Settle with"]], review, "no order needs review", { id: "needs-review" }))),
      note(s.note, waiting ? "neg" : ""));
  }

  const SECTION_VIEWS = { guards: renderGuards, breakers: renderBreakers, throttling: renderThrottling,
                          account: renderAccount, reconciliation: renderReconciliation, safety: renderSafety };

  function renderSections(sections) {
    $("sections").replaceChildren(...sections.map((s) => {
      const view = SECTION_VIEWS[s.key];
      if (!s.available || !view) {
        return el("section", { class: `card na ${SPANS[s.key] || "span-4"}`, "data-section": s.key }, el("h2", {}, s.title),
          el("div", { class: "na-text" }, s.note || "not shown by this page"));
      }
      return view(s);
    }));
  }

  function renderEvents(events) {
    const rows = events.map((e) => {
      const bad = (e.kind === "exited" && e.reason && !/^(shutdown|normal)/.test(e.reason));
      return el("tr", { "data-event-id": e.id }, td(time(e.at), "nowrap"), td(e.supervisor, "mono"),
        td(el("span", { class: `badge ${bad ? "exited-bad" : e.kind}` }, e.kind.replace("_", " "))),
        td(e.child_id ?? "—", "mono"), td(e.incarnation ?? "—", "num"), td(e.reason ?? "", `wrap ${bad ? "neg" : "muted"}`));
    });
    fillBody("events", rows, "no supervisor event recorded", 6);
  }

  function renderAlerts(a) {
    setPill($("alerts-backlog"), a.unsent ? "warn" : "ok", a.unsent ? `${a.unsent} undelivered` + (a.oldest_unsent_age_s !== null ? `, oldest ${age(a.oldest_unsent_age_s)}` : "") : "all delivered");
    const rows = a.recent.map((x) => el("tr", { "data-alert-id": x.id },
      td(time(x.created_at), "nowrap"), td(el("span", { class: `badge ${x.level}` }, x.level)), td(x.kind, "mono"),
      td(x.text, "wrap"),
      td(x.delivered ? `✓ ${x.channel ?? ""} ${time(x.sent_at)}` : `✗ pending${x.attempts ? ` (${x.attempts} tries${x.last_error ? `: ${x.last_error}` : ""})` : ""}`,
        x.delivered ? "nowrap muted" : "wrap neg")));
    fillBody("alerts", rows, "no alert yet", 5);
  }

  // ---- charts -------------------------------------------------------------------------------
  const axis = { stroke: "#8a97a8", grid: { stroke: "#222b36", width: 1 }, ticks: { stroke: "#2a3441", width: 1 }, font: "11px system-ui, sans-serif" };
  const utc = (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");

  function triangles(u, seriesIdx, up, color) {
    const ctx = u.ctx;
    const xs = u.data[0];
    const ys = u.data[seriesIdx];
    const size = 6 * devicePixelRatio;
    ctx.save();
    ctx.fillStyle = color;
    ctx.strokeStyle = "#0d1117";
    ctx.lineWidth = devicePixelRatio;
    for (let i = 0; i < xs.length; i++) {
      if (ys[i] === null || ys[i] === undefined) continue;
      const cx = u.valToPos(xs[i], "x", true);
      const cy = u.valToPos(ys[i], "y", true) + (up ? size * 1.3 : -size * 1.3);
      ctx.beginPath();
      if (up) { ctx.moveTo(cx, cy - size); ctx.lineTo(cx + size, cy + size * 0.8); ctx.lineTo(cx - size, cy + size * 0.8); }
      else { ctx.moveTo(cx, cy + size); ctx.lineTo(cx + size, cy - size * 0.8); ctx.lineTo(cx - size, cy - size * 0.8); }
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
    ctx.restore();
  }

  function timeTicks(u, splits, axisIdx, foundSpace, foundIncr) {
    const span = u.scales.x.max - u.scales.x.min;
    let prevDay = null;
    return splits.map((ts) => {
      const iso = new Date(ts * 1000).toISOString();
      const day = iso.slice(0, 10);
      if (span > 3 * 86400) return day;
      const t = foundIncr < 60 ? iso.slice(11, 19) : iso.slice(11, 16);
      const label = day !== prevDay ? `${t}\n${day}` : t;
      prevDay = day;
      return label;
    });
  }
  const timeAxis = { ...axis, values: timeTicks, size: 44 };

  function priceOptions(width) {
    return {
      width, height: 330, tzDate: utc, legend: { show: false }, cursor: { drag: { x: true, y: false } }, padding: [10, 28, 0, 0],
      scales: { x: { time: true } },
      axes: [timeAxis, { ...axis, size: 86, values: (u, v) => v.map((x) => nf0.format(x)) }],
      series: [{},
        { label: "close", stroke: "#5aa9ff", width: 1.6, fill: "rgba(90,169,255,0.08)", points: { show: false } },
        { label: "entry", stroke: "#3fb950", paths: () => null, points: { show: false } },
        { label: "exit", stroke: "#f85149", paths: () => null, points: { show: false } }],
      hooks: { draw: [(u) => { triangles(u, 2, true, "#3fb950"); triangles(u, 3, false, "#f85149"); }] },
    };
  }
  function equityOptions(width) {
    return {
      width, height: 180, tzDate: utc, legend: { show: false }, cursor: { drag: { x: false, y: false } }, padding: [10, 34, 0, 0],
      scales: { x: { time: true } },
      axes: [timeAxis, { ...axis, size: 70, values: (u, v) => v.map((x) => nf0.format(x)) }],
      series: [{},
        { label: "realised", stroke: "#b392f0", width: 1.6, fill: "rgba(179,146,240,0.10)", paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
        { label: "marked", stroke: "#e3b341", paths: () => null, points: { show: true, size: 9, fill: "#e3b341", stroke: "#0d1117", width: 2 } }],
    };
  }

  function showEmpty(box, text) {
    let e = box.querySelector(".empty");
    if (!text) { if (e) e.remove(); return; }
    if (!e) { e = el("div", { class: "empty" }); box.append(e); }
    e.textContent = text;
  }

  // A chart fills its box: the box's width, and for the price chart the height the card row gives it.
  function chartInto(key, box, make, data, fill) {
    const width = Math.max(200, box.clientWidth);
    const height = fill ? Math.max(300, Math.min(560, box.clientHeight)) : undefined;
    const chart = state[key];
    if (chart && (Math.abs(chart.__width - width) > 2 || (fill && Math.abs(chart.__height - height) > 2))) {
      chart.destroy();
      state[key] = null;
    }
    if (!state[key]) {
      const opts = make(width);
      if (height) opts.height = height;
      state[key] = new uPlot(opts, data, box);
      state[key].__width = width;
      state[key].__height = opts.height;
    } else {
      state[key].setData(data);
    }
  }

  function renderSeries(s) {
    const box = $("price-chart");
    const select = $("market-select");
    if (s.markets.length > 1) {
      select.hidden = false;
      if ([...select.options].map((o) => o.value).join() !== s.markets.join()) {
        select.replaceChildren(...s.markets.map((m) => el("option", { value: m }, m)));
      }
      select.value = s.market;
    } else select.hidden = true;
    state.market = s.market;
    $("price-market").textContent = s.market ? `${s.market} · 1-second bars${s.source ? ` · ${s.source}` : ""} · UTC` : "";
    const t = s.bars.t;
    box.dataset.points = String(t.length);
    box.dataset.fills = String(s.fills.length);
    if (t.length) {
      chartInto("priceChart", box, priceOptions, [t, s.bars.close, s.buys, s.sells], true);
      showEmpty(box, "");
    } else {
      if (state.priceChart) { state.priceChart.destroy(); state.priceChart = null; }
      showEmpty(box, "no bar stored yet");
    }
    const entries = s.buys.filter((v) => v !== null).length;
    const exits = s.sells.filter((v) => v !== null).length;
    $("price-note").textContent = t.length ? `${num(t.length, 0)} bars from ${epochTime(t[0])} to ${epochTime(t[t.length - 1])} UTC · ${entries} entries, ${exits} exits shown. Drag to zoom, double-click to reset.` : "";
    const eq = s.equity;
    const ebox = $("equity-chart");
    ebox.dataset.points = String(eq.t.length);
    if (eq.t.length >= 2) {
      chartInto("equityChart", ebox, equityOptions, [eq.t, eq.realised, eq.marked]);
      showEmpty(ebox, "");
    } else {
      if (state.equityChart) { state.equityChart.destroy(); state.equityChart = null; }
      showEmpty(ebox, "no closed paper trade yet");
    }
  }

  // ---- polling ------------------------------------------------------------------------------
  async function getJson(url) {
    const res = await fetch(url, { cache: "no-store" });
    if (!(res.headers.get("Content-Type") || "").startsWith("application/json")) {
      const err = new Error(`HTTP ${res.status} from ${url}`);
      err.httpStatus = res.status;
      throw err;
    }
    return { ok: res.ok, body: await res.json() };
  }

  function render(st) {
    renderHeader(st);
    renderTree(st.system);
    renderPipeline(st.system);
    renderFeed(st.feed);
    renderBook(st.portfolio);
    renderExecution(st.execution);
    renderSections(st.sections);
    renderEvents(st.events);
    renderAlerts(st.alerts);
  }

  async function poll() {
    if (state.inFlight) return;
    state.inFlight = true;
    try {
      const { body } = await getJson("/api/status");
      state.serverDownSince = null;
      state.serverError = null;
      if (body.database && body.database.ok) {
        state.dbDown = null;
        state.dbDownSince = null;
        state.status = body;
        state.statusAt = Date.now();
        render(body);
        const q = state.market ? `?market=${encodeURIComponent(state.market)}` : "";
        const series = await getJson(`/api/series${q}`);
        if (series.ok) renderSeries(series.body);
        document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);  // rendered polls
      } else {
        state.dbDown = (body.database && body.database.error) || "unknown error";
        state.dbDownSince = state.dbDownSince || Date.now();
        if (body.health) renderHeader({ ...(state.status || {}), health: body.health });
      }
    } catch (err) {
      if (err.httpStatus) {
        state.serverError = `${err.message}: the dashboard could not build this view (see the system log)`;
      } else {
        state.serverDownSince = state.serverDownSince || Date.now();
        $("health").dataset.ok = "false";
        $("health").querySelector(".text").textContent = "Unknown · dashboard unreachable";
      }
    } finally {
      state.inFlight = false;
      renderBanners();
      renderUpdated();
    }
  }

  $("market-select").addEventListener("change", (e) => { state.market = e.target.value; poll(); });
  window.addEventListener("resize", () => { if (state.status) poll(); });
  setInterval(renderUpdated, 1000);
  setInterval(poll, POLL_MS);
  poll();
})();
