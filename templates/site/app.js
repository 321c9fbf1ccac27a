/* pipe docs: one page, routed by the URL's hash, drawn from window.PIPE_DATA (data.js).
   Nothing is fetched: the site opens from file:// with no network. */
(function () {
  "use strict";
  const D = window.PIPE_DATA;
  const main = document.getElementById("main");
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const enc = encodeURIComponent;
  const byName = new Map(D.models.map((m) => [m.name, m]));
  const byTable = new Map();
  for (const m of D.models) {
    const t = m.name.split(".").pop();
    if (!byTable.has(t)) byTable.set(t, []);
    byTable.get(t).push(m.name);
  }
  const runsById = new Map(D.runs.map((r) => [String(r.id), r]));
  const modelLink = (n) => byName.has(n) ? `<a href="#/model/${enc(n)}">${esc(n)}</a>` : esc(n);
  const badge = (k) => `<span class="badge kind-${esc(k)}">${esc(k)}</span>`;
  const st = (s) => `<span class="s-${esc(String(s).split(" ")[0])}">${esc(s)}</span>`;
  const secs = (s) => s == null ? "–" : s < 1 ? `${Math.round(s * 1000)} ms` : s < 120 ? `${s.toFixed(2)} s`
    : s < 7200 ? `${(s / 60).toFixed(1)} min` : s < 172800 ? `${+(s / 3600).toFixed(1)} h` : `${+(s / 86400).toFixed(1)} d`;
  const empty = (text) => `<p class="empty">${esc(text)}</p>`;

  // the newest run's verdict per model, for the graph (a red outline on what failed last)
  const lastFailed = new Set();
  {
    const seen = new Set();
    for (const r of D.runs) {  // newest first
      const here = new Map();
      for (const t of r.tasks.concat(r.not_started)) {
        const bad = t.status === "failed" || t.status === "upstream_failed";
        here.set(t.model, (here.get(t.model) || false) || bad);
      }
      for (const [m, bad] of here) {
        if (seen.has(m)) continue;
        seen.add(m);
        if (bad) lastFailed.add(m);
      }
    }
  }

  // ------------------------------------------------------------ selection (as --select)
  function closure(start, edges) {
    const seen = new Set(start), stack = [...start];
    while (stack.length) for (const n of edges(stack.pop())) if (!seen.has(n)) { seen.add(n); stack.push(n); }
    return seen;
  }
  /* `name`, `+name`, `name+`, `tag:x`, unions by spaces; null selects all. A word that is
     no name matches every name containing it (a search box, not only a selector). */
  function select(expr) {
    const terms = (expr || "").trim().split(/\s+/).filter(Boolean);
    if (!terms.length) return null;
    const chosen = new Set();
    for (const term of terms) {
      const up = term.startsWith("+"), down = term.endsWith("+") && term.length > 1;
      let core = term.replace(/^\++|\++$/g, "");
      let base;
      if (core.startsWith("tag:")) {
        const tag = core.slice(4);
        base = D.models.filter((m) => m.tags.includes(tag)).map((m) => m.name);
        if (!base.length) throw new Error(`no model has tag '${tag}'`);
      } else {
        core = core.toLowerCase();
        if (byName.has(core)) base = [core];
        else if ((byTable.get(core) || []).length === 1) base = byTable.get(core);
        else {
          base = D.models.filter((m) => m.name.includes(core)).map((m) => m.name);
          if (!base.length) throw new Error(`matches nothing: '${core}'`);
        }
      }
      let sel = new Set(base);
      if (up) sel = new Set([...sel, ...closure(base, (n) => byName.get(n).upstream)]);
      if (down) sel = new Set([...sel, ...closure(base, (n) => byName.get(n).downstream)]);
      for (const n of sel) chosen.add(n);
    }
    return chosen;
  }

  // ------------------------------------------------------------ the graph
  const W = 210, H = 36, DX = 250, DY = 50, LAYER_GAP = 60;
  const view = { k: 1, x: 20, y: 20, fitted: false };
  let dagQuery = "";

  function pageDag(query) {
    if (query != null) dagQuery = query;
    main.className = "full";
    main.innerHTML = `
      <div class="toolbar" role="search">
        <label for="q" class="hint">Select</label>
        <input type="search" id="q" autocomplete="off" spellcheck="false" value="${esc(dagQuery)}"
          placeholder="name, +name, name+, tag:x (press /)" aria-describedby="qinfo">
        <span id="qinfo" class="hint" aria-live="polite"></span>
        <button class="btn" id="fit" title="Fit (0)">Fit</button>
        <button class="btn" id="zin" title="Zoom in (+)" aria-label="Zoom in">+</button>
        <button class="btn" id="zout" title="Zoom out (-)" aria-label="Zoom out">−</button>
        <span class="legend">${["full", "incremental", "view", "seed", "source"].map((k) =>
          `<span><span class="sw kind-${k}"></span>${k}</span>`).join("")}
          <span><span class="sw" style="border:2px solid var(--bad)"></span>failed last run</span></span>
      </div>
      <div id="dag" aria-label="Dependency graph: arrows pan, + and - zoom, 0 fits, Tab walks the models"></div>`;
    const box = document.getElementById("dag");
    const parts = [];
    const index = new Map(D.models.map((m, i) => [m.name, i]));
    const pos = D.models.map((m) => [m.xy[0] * DX + m.xy[2] * LAYER_GAP, m.xy[1] * DY]);
    const edges = [];
    D.models.forEach((m, i) => {
      for (const u of m.upstream) {
        const j = index.get(u);
        if (j === undefined) continue;
        const [x1, y1] = pos[j], [x2, y2] = pos[i];
        const a = x1 + W, b = y1 + H / 2, c = y2 + H / 2, mid = (a + x2) / 2;
        edges.push([j, i]);
        parts.push(`<path class="edge" data-e="${j} ${i}" d="M${a} ${b}C${mid} ${b} ${mid} ${c} ${x2} ${c}"/>`);
      }
    });
    D.models.forEach((m, i) => {
      const [x, y] = pos[i];
      const label = m.name.length > 32 ? m.name.slice(0, 31) + "…" : m.name;
      const sub = [m.kind, m.grain, m.tags.length ? "#" + m.tags.join(" #") : ""].filter(Boolean).join(" · ");
      parts.push(`<a class="node kind-${m.kind}${lastFailed.has(m.name) ? " failed" : ""}" href="#/model/${enc(m.name)}" data-i="${i}" transform="translate(${x} ${y})"><title>${esc(m.name)}</title><rect width="${W}" height="${H}"/><text x="8" y="15">${esc(label)}</text><text class="k" x="8" y="28">${esc(sub)}</text></a>`);
    });
    box.innerHTML = `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="The project's models and their dependencies"><g id="vp">${parts.join("")}</g></svg>`;
    const svg = box.firstChild, vp = svg.firstChild;
    const nodes = vp.querySelectorAll(".node"), paths = vp.querySelectorAll(".edge");
    const apply = () => {
      vp.setAttribute("transform", `translate(${view.x} ${view.y}) scale(${view.k})`);
      svg.classList.toggle("far", view.k < 0.45);  // labels unreadable anyway: draw boxes only
    };
    function fit(only) {
      const idx = only ? [...only].map((n) => index.get(n)) : pos.map((_, i) => i);
      if (!idx.length) return;
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const i of idx) {
        x0 = Math.min(x0, pos[i][0]); y0 = Math.min(y0, pos[i][1]);
        x1 = Math.max(x1, pos[i][0] + W); y1 = Math.max(y1, pos[i][1] + H);
      }
      const w = box.clientWidth || 800, h = box.clientHeight || 600, pad = 30;
      view.k = Math.min((w - 2 * pad) / (x1 - x0), (h - 2 * pad) / (y1 - y0), 1.4);
      view.k = Math.max(view.k, 0.05);
      view.x = pad - x0 * view.k + ((w - 2 * pad) - (x1 - x0) * view.k) / 2;
      view.y = pad - y0 * view.k + ((h - 2 * pad) - (y1 - y0) * view.k) / 2;
      apply();
    }
    function zoom(f, cx, cy) {
      const w = box.clientWidth, h = box.clientHeight;
      cx = cx == null ? w / 2 : cx; cy = cy == null ? h / 2 : cy;
      const k = Math.min(4, Math.max(0.03, view.k * f));
      view.x = cx - (cx - view.x) * (k / view.k);
      view.y = cy - (cy - view.y) * (k / view.k);
      view.k = k;
      apply();
    }
    if (!view.fitted) { fit(); view.fitted = true; } else apply();

    const info = document.getElementById("qinfo"), q = document.getElementById("q");
    let hits = null;
    function search() {
      const text = q.value;
      dagQuery = text;
      history.replaceState(null, "", text ? `#/?s=${enc(text)}` : "#/");
      try {
        hits = select(text);
        info.className = "hint";
      } catch (e) {
        hits = new Set();
        info.className = "err";
        info.textContent = e.message;
      }
      svg.classList.toggle("dim", hits !== null);
      nodes.forEach((n) => n.classList.toggle("hit", !!hits && hits.has(D.models[+n.dataset.i].name)));
      paths.forEach((p) => {
        const [a, b] = p.dataset.e.split(" ").map(Number);
        p.classList.toggle("hot", !!hits && hits.has(D.models[a].name) && hits.has(D.models[b].name));
      });
      if (info.className === "hint") info.textContent = hits ? `${hits.size} of ${D.models.length} match · Enter ${hits.size === 1 ? "opens it" : "zooms to them"}` : `${D.models.length} nodes`;
    }
    q.addEventListener("input", search);
    q.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && hits && hits.size) {
        if (hits.size === 1) location.hash = `#/model/${enc([...hits][0])}`;
        else fit(hits);
      }
      if (e.key === "Escape") { q.value = ""; search(); q.blur(); }
    });
    search();
    document.getElementById("fit").onclick = () => fit(hits && hits.size ? hits : null);
    document.getElementById("zin").onclick = () => zoom(1.25);
    document.getElementById("zout").onclick = () => zoom(0.8);

    // hover or focus on a node lights its edges
    const light = (i, on) => paths.forEach((p) => {
      const [a, b] = p.dataset.e.split(" ").map(Number);
      if (a !== i && b !== i) return;
      const selected = !!hits && hits.has(D.models[a].name) && hits.has(D.models[b].name);
      p.classList.toggle("hot", on || selected);
    });
    vp.addEventListener("pointerover", (e) => { const n = e.target.closest(".node"); if (n) { n.classList.add("hover"); light(+n.dataset.i, true); } });
    vp.addEventListener("pointerout", (e) => { const n = e.target.closest(".node"); if (n) { n.classList.remove("hover"); light(+n.dataset.i, false); } });
    vp.addEventListener("focusin", (e) => {
      const n = e.target.closest(".node");
      if (!n) return;
      const [x, y] = pos[+n.dataset.i], w = box.clientWidth, h = box.clientHeight;
      const sx = view.x + x * view.k, sy = view.y + y * view.k;
      if (sx < 0 || sy < 0 || sx + W * view.k > w || sy + H * view.k > h) {  // keep it in view
        view.x = w / 2 - (x + W / 2) * view.k; view.y = h / 2 - (y + H / 2) * view.k; apply();
      }
    });
    let drag = null;
    svg.addEventListener("pointerdown", (e) => {
      if (e.target.closest(".node")) return;
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y };
      box.classList.add("drag");
      svg.setPointerCapture(e.pointerId);
    });
    svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      view.x = drag.vx + e.clientX - drag.x; view.y = drag.vy + e.clientY - drag.y; apply();
    });
    const end = () => { drag = null; box.classList.remove("drag"); };
    svg.addEventListener("pointerup", end);
    svg.addEventListener("pointercancel", end);
    svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = svg.getBoundingClientRect();
      zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    dagKeys = (e) => {
      const step = 80;
      if (e.key === "ArrowLeft") view.x += step; else if (e.key === "ArrowRight") view.x -= step;
      else if (e.key === "ArrowUp") view.y += step; else if (e.key === "ArrowDown") view.y -= step;
      else if (e.key === "+" || e.key === "=") return zoom(1.25), true;
      else if (e.key === "-") return zoom(0.8), true;
      else if (e.key === "0") return fit(hits && hits.size ? hits : null), true;
      else return false;
      apply();
      return true;
    };
  }
  let dagKeys = null;

  // ------------------------------------------------------------ models
  function filterBox(id, value, what) {
    return `<input type="search" id="${id}" value="${esc(value || "")}" placeholder="name, +name, name+, tag:x" aria-label="Select ${what}" spellcheck="false" autocomplete="off"> <span id="${id}info" class="hint"></span>`;
  }
  function wireFilter(id, render) {
    const input = document.getElementById(id), info = document.getElementById(id + "info");
    const go = () => {
      let chosen = null;
      try { chosen = select(input.value); info.textContent = ""; info.className = "hint"; }
      catch (e) { chosen = new Set(); info.textContent = e.message; info.className = "err"; }
      render(chosen);
    };
    input.addEventListener("input", go);
    go();
  }

  function pageModels() {
    main.innerHTML = `<h1>Models</h1><p class="sub">${D.models.length} nodes of ${esc(D.project.name)}: models, seeds and sources.</p>
      <p>${filterBox("mq", "", "models")}</p><div id="mt"></div>`;
    wireFilter("mq", (chosen) => {
      const rows = D.models.filter((m) => !chosen || chosen.has(m.name));
      document.getElementById("mt").innerHTML = `<table><thead><tr><th>name</th><th>kind</th><th>grain</th><th>tags</th><th>description</th><th class="num">upstream</th><th class="num">downstream</th></tr></thead><tbody>${
        rows.slice(0, 2000).map((m) => `<tr><td>${modelLink(m.name)}</td><td>${badge(m.kind)}</td><td>${esc(m.grain || "–")}</td><td>${esc(m.tags.join(", "))}</td><td>${esc(m.description || "")}</td><td class="num">${m.upstream.length}</td><td class="num">${m.downstream.length}</td></tr>`).join("")}</tbody></table>`;
    });
  }

  function tasksOf(name) {
    const out = [];
    for (const r of D.runs) for (const t of r.tasks.concat(r.not_started)) if (t.model === name) out.push([r, t]);
    return out;
  }
  function duration(t) {
    const a = (t.attempts || [])[t.attempts ? t.attempts.length - 1 : 0];
    return a && a.end != null && a.start != null ? a.end - a.start : null;
  }

  function pageModel(name, column) {
    const m = byName.get(name);
    if (!m) { main.innerHTML = `<h1>Not found</h1>${empty(`No model called ${name}.`)}`; return; }
    const checks = (D.checks || {})[name] || {};
    const lin = D.lineage && D.lineage[name];
    const fact = (k, v) => v == null || v === "" || v === false ? "" : `<dt>${esc(k)}</dt><dd>${v}</dd>`;
    const schedule = m.kind === "incremental" ? `one task per ${esc(m.grain)} interval`
      : m.kind === "seed" ? "loaded when the file changes" : m.kind === "source" ? "external (not built by pipe)"
      : `once per run (project schedule: ${esc(D.project.schedule)})`;
    const colRows = m.columns.map((c) => {
      const l = lin && lin[c.name];
      const refs = (xs) => (xs || []).map(([mm, cc]) => `<a href="#/model/${enc(mm)}/${enc(cc)}">${esc(mm)}.${esc(cc)}</a>`).join(", ") || "–";
      return `<tr id="col-${esc(c.name)}"${c.name === column ? ' class="hit" style="outline:2px solid var(--focus)"' : ""}><td><code>${esc(c.name)}</code></td><td>${esc(c.doc || "")}</td>${D.lineage ? `<td class="lin-up">${refs(l && l.upstream)}</td><td class="lin-down">${refs(l && l.downstream)}</td>` : ""}</tr>`;
    }).join("");
    const sqls = m.sql || [];
    const recent = tasksOf(name).slice(0, 40);
    main.innerHTML = `
      <p class="sub"><a href="#/">Graph</a> / <a href="#/models">Models</a> / ${esc(m.name)}</p>
      <h1 tabindex="-1">${esc(m.name)} ${badge(m.kind)}</h1>
      <p id="desc">${m.description ? esc(m.description) : '<span class="empty">No description (add one in the sidecar).</span>'}</p>
      <dl class="facts">
        ${fact("kind", esc(m.kind))}${fact("grain", esc(m.grain))}${fact("schedule", schedule)}
        ${fact("time column", m.time_column && `<code>${esc(m.time_column)}</code>`)}
        ${fact("depends on past", m.depends_on_past && "yes")}${fact("pool", esc(m.pool))}
        ${fact("max concurrency", m.max_concurrency)}${fact("retries", m.retries || "")}${fact("timeout", m.timeout && secs(m.timeout))}
        ${fact("tags", esc(m.tags.join(", ")))}${fact("file", m.path && `<code>${esc(m.path)}</code>`)}
        ${fact("sidecar", m.sidecar && `<code>${esc(m.sidecar)}</code>`)}${fact("fingerprint", `<code>${esc(m.fingerprint.slice(0, 16))}</code>`)}
        ${fact("wait for", m.wait_for && `<code>${esc(m.wait_for)}</code>`)}
      </dl>
      <div class="cols">
        <section><h2>Upstream (${m.upstream.length})</h2>${m.upstream.length ? `<ul class="links" id="up">${m.upstream.map((u) => `<li>${modelLink(u)}</li>`).join("")}</ul>` : empty("Reads no model: a root.")}</section>
        <section><h2>Downstream (${m.downstream.length})</h2>${m.downstream.length ? `<ul class="links" id="down">${m.downstream.map((u) => `<li>${modelLink(u)}</li>`).join("")}</ul>` : empty("Nothing reads it yet.")}</section>
      </div>
      <h2>Columns</h2>
      ${m.columns.length ? `<table id="columns"><thead><tr><th>column</th><th>description</th>${D.lineage ? "<th>comes from</th><th>feeds</th>" : ""}</tr></thead><tbody>${colRows}</tbody></table>` : empty("No columns known: compile a plan for an interval to see them.")}
      ${!D.lineage ? `<p class="empty" id="lineage-na">Column lineage is not available in this build.</p>`
        : (D.lineage_errors || {})[name] ? `<p class="empty" id="lineage-na">Column lineage could not be followed: ${esc(D.lineage_errors[name])}</p>` : ""}
      <h2>Checks</h2>
      ${m.checks.length ? `<table id="checks"><thead><tr><th>check</th><th>type</th><th>severity</th><th>latest result</th></tr></thead><tbody>${m.checks.map((c) => {
        const r = checks[c.name];
        const res = r ? `${st(r.status)}${r.failures ? ` · ${r.failures} failing rows` : ""} · <a href="#/run/${r.run}/task/${r.task}">run ${r.run}</a>` : '<span class="empty">not run yet</span>';
        return `<tr><td><code>${esc(c.name)}</code></td><td>${esc(c.type)}</td><td>${esc(c.severity)}</td><td>${res}</td></tr>`;
      }).join("")}</tbody></table>` : empty("No checks.")}
      <h2>Compiled SQL <span class="hint">(${esc(D.project.target)}, ${esc(D.project.target_dialect)})</span></h2>
      ${sqls.length ? `<label>Interval <select id="sqlpick">${sqls.map((s, i) => `<option value="${i}">${esc(s.interval)}${s.plan !== s.interval ? ` (plan ${esc(s.plan)})` : ""}</option>`).join("")}</select></label><pre><code id="sql"></code></pre>`
        : empty(m.kind === "source" ? "A source is read, not built." : `No plan on disk for target ${D.project.target}: 'pipe compile --interval LABEL' writes one.`)}
      <h2>Recent tasks</h2>
      ${recent.length ? `<table id="recent"><thead><tr><th>run</th><th>interval</th><th>status</th><th class="num">time</th></tr></thead><tbody>${recent.map(([r, t]) =>
        `<tr><td><a href="#/run/${r.id}">run ${r.id}</a> (${esc(r.kind)} ${esc(r.label)})</td><td><a href="#/run/${r.id}/task/${esc(t.id)}">${esc(t.interval)}</a></td><td>${st(t.status)}</td><td class="num">${secs(duration(t))}</td></tr>`).join("")}</tbody></table>` : empty("Never ran on this target.")}`;
    const pick = document.getElementById("sqlpick");
    if (pick) {
      const show = () => { document.getElementById("sql").textContent = sqls[+pick.value].sql; };
      pick.addEventListener("change", show);
      show();
    }
    if (column) {
      const row = document.getElementById(`col-${column}`);
      if (row) row.scrollIntoView({ block: "center" });
    }
  }

  // ------------------------------------------------------------ runs
  function countsText(c) {
    return c ? Object.entries(c).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(", ") : "";
  }
  function pageRuns() {
    main.innerHTML = `<h1>Runs</h1><p class="sub">The ${D.runs.length} newest runs and backfills on target ${esc(D.project.target)}.</p>
      ${D.runs.length ? `<table id="runs"><thead><tr><th>run</th><th>kind</th><th>interval</th><th>status</th><th>started (UTC)</th><th class="num">took</th><th class="num">tasks</th><th>outcomes</th></tr></thead><tbody>${D.runs.map((r) =>
        `<tr><td><a href="#/run/${r.id}">run ${r.id}</a></td><td>${esc(r.kind)}</td><td>${esc(r.label)}</td><td>${st(r.status)}</td><td>${esc(r.started_at)}</td><td class="num">${secs(r.seconds)}</td><td class="num">${r.total}</td><td>${esc(countsText(r.counts))}</td></tr>`).join("")}</tbody></table>`
        : empty("Nothing ran yet: 'pipe run --interval LABEL'.")}`;
  }

  function pageRun(id, taskId) {
    const r = runsById.get(String(id));
    if (!r) { main.innerHTML = `<h1>Not found</h1>${empty(`No run ${id} among the newest runs.`)}`; return; }
    if (taskId) return pageTask(r, taskId);
    const failed = r.tasks.filter((t) => t.status === "failed");
    const waits = r.tasks.flatMap((t) => t.attempts.filter((a) => a.queued != null && a.start != null && a.n === t.attempts[0].n).map((a) => a.start - a.queued));
    const execs = r.tasks.flatMap((t) => t.attempts.filter((a) => a.end != null).map((a) => a.end - a.start));
    const sum = (xs) => xs.reduce((a, b) => a + b, 0);
    const crit = r.critical_path.map((id) => r.tasks.find((t) => t.id === id)).filter(Boolean);
    main.innerHTML = `
      <p class="sub"><a href="#/runs">Runs</a> / run ${r.id}</p>
      <h1 tabindex="-1">Run ${r.id} ${st(r.status)}</h1>
      <dl class="facts"><dt>kind</dt><dd>${esc(r.kind)}</dd><dt>interval</dt><dd>${esc(r.label)}</dd>
        <dt>started</dt><dd>${esc(r.started_at)}</dd><dt>took</dt><dd>${secs(r.seconds)}</dd>
        <dt>tasks</dt><dd>${r.total}${r.counts ? ` · ${esc(countsText(r.counts))}` : ""}</dd>
        <dt>queue wait</dt><dd id="wait">${secs(sum(waits))} in total, longest ${secs(Math.max(0, ...waits))}; execution ${secs(sum(execs))} in total</dd>
        ${Object.entries(r.args || {}).filter(([, v]) => v).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
      <h2>Failures (${failed.length + r.not_started.length})</h2>
      ${failed.length || r.not_started.length ? `<ul class="links" id="failures">${failed.map((t) => {
        const last = t.attempts[t.attempts.length - 1];
        return `<li><a href="#/run/${r.id}/task/${esc(t.id)}">${esc(t.model)} ${esc(t.interval)}</a> ${st(t.status)}<pre class="error">${esc(last.error || t.reason || "")}</pre></li>`;
      }).join("")}${r.not_started.map((t) => `<li><a href="#/run/${r.id}/task/${esc(t.id)}">${esc(t.model)} ${esc(t.interval)}</a> ${st(t.status)} <span class="hint">${esc(t.reason || "")}</span></li>`).join("")}</ul>` : empty("None.")}
      <h2>Critical path (${crit.length} tasks${crit.length ? `, ${secs(critSeconds(crit))}` : ""})</h2>
      ${crit.length ? `<ol class="path" id="critical">${crit.map((t) => `<li><a href="#/run/${r.id}/task/${esc(t.id)}">${esc(t.interval === "-" ? t.model : `${t.model} ${t.interval}`)}</a> <span class="hint">${secs(duration(t))}</span></li>`).join("")}</ol>` : empty("No task finished.")}
      <h2>Timeline</h2>
      <p class="legend"><span><span class="sw bar-queue" style="background:var(--queue)"></span>waiting in the queue</span>
        <span><span class="sw" style="background:var(--ok)"></span>executing</span><span><span class="sw" style="background:var(--bad)"></span>failed</span>
        <span><span class="sw" style="border:2px solid var(--crit)"></span>critical path</span>${r.hidden ? ` · ${r.hidden} more tasks not shown` : ""}</p>
      ${timeline(r)}`;
  }

  function critSeconds(chain) {  // from the first task being ready to the last one finishing
    const a0 = chain[0].attempts[0], last = chain[chain.length - 1].attempts;
    return last[last.length - 1].end - (a0.queued ?? a0.start);
  }

  function timeline(r) {
    const rows = r.tasks.slice().sort((a, b) => (a.attempts[0].queued ?? a.attempts[0].start ?? 0) - (b.attempts[0].queued ?? b.attempts[0].start ?? 0));
    if (!rows.length) return empty("No task started.");
    const end = Math.max(0.001, ...rows.flatMap((t) => t.attempts.map((a) => a.end ?? a.start ?? 0)));
    const L = 300, RW = 760, RH = 20, top = 22, width = L + RW + 20;
    const x = (t) => L + (t / end) * RW;
    const ticks = [];
    for (let i = 0; i <= 5; i++) {
      const t = (end * i) / 5;
      ticks.push(`<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${top - 4}" y2="${top + rows.length * RH}"/><text class="axis" x="${x(t)}" y="12" text-anchor="middle">${esc(secs(t))}</text>`);
    }
    const body = rows.map((t, i) => {
      const y = top + i * RH;
      const bars = t.attempts.map((a) => {
        const q = a.queued != null && a.start != null && a.start > a.queued ? `<rect class="bar-queue" x="${x(a.queued)}" y="${y + 4}" width="${Math.max(1, x(a.start) - x(a.queued))}" height="${RH - 8}"/>` : "";
        const e = a.start != null ? `<rect class="bar-${esc(a.status)}" x="${x(a.start)}" y="${y + 3}" width="${Math.max(2, x(a.end ?? a.start) - x(a.start))}" height="${RH - 6}" rx="2"/>` : "";
        return q + e;
      }).join("");
      const tip = `${t.model} ${t.interval}: ${t.status}; ` + t.attempts.map((a) => `attempt ${a.n} waited ${secs(a.start - a.queued)}, ran ${secs(a.end - a.start)}`).join("; ");
      const lbl = t.interval === "-" ? t.model : `${t.model} ${t.interval}`;
      return `<a class="row${t.critical ? " crit" : ""}" href="#/run/${r.id}/task/${esc(t.id)}" data-task="${esc(t.id)}"><title>${esc(tip)}</title><rect class="bg" x="0" y="${y}" width="${width}" height="${RH}"/><text class="lbl" x="6" y="${y + 14}">${esc(lbl.length > 44 ? lbl.slice(0, 43) + "…" : lbl)}</text>${bars}</a>`;
    }).join("");
    return `<svg class="timeline" id="timeline" viewBox="0 0 ${width} ${top + rows.length * RH + 6}" style="max-width:${width}px" role="img" aria-label="Task attempts over time">${ticks.join("")}${body}</svg>`;
  }

  function pageTask(r, id) {
    const t = r.tasks.find((x) => x.id === id) || r.not_started.find((x) => x.id === id);
    if (!t) { main.innerHTML = `<h1>Not found</h1>${empty(`Run ${r.id} has no task ${id} on this site.`)}`; return; }
    const m = byName.get(t.model);
    const sql = m && (m.sql || []).find((s) => s.interval === t.interval);
    const atts = t.attempts || [];
    main.innerHTML = `
      <p class="sub"><a href="#/runs">Runs</a> / <a href="#/run/${r.id}">run ${r.id}</a> / task ${esc(t.id)}</p>
      <h1 tabindex="-1">${esc(t.model)} <span class="hint">${esc(t.interval)}</span> ${st(t.status)}</h1>
      <dl class="facts"><dt>model</dt><dd>${modelLink(t.model)}</dd><dt>interval</dt><dd>${esc(t.interval)}</dd>
        <dt>status</dt><dd id="status">${st(t.status)}</dd>${t.reason ? `<dt>reason</dt><dd id="reason">${esc(t.reason)}</dd>` : ""}
        <dt>critical path</dt><dd>${t.critical ? "yes" : "no"}</dd><dt>task id</dt><dd><code>${esc(t.id)}</code></dd></dl>
      <h2>Attempts (${atts.length})</h2>
      ${atts.length ? `<table id="attempts"><thead><tr><th>#</th><th>status</th><th class="num">queue wait</th><th class="num">execution</th><th class="num">rows</th></tr></thead><tbody>${atts.map((a) =>
        `<tr><td>${a.n}</td><td>${st(a.status)}</td><td class="num">${secs(a.queued != null && a.start != null ? a.start - a.queued : null)}</td><td class="num">${secs(a.end != null && a.start != null ? a.end - a.start : null)}</td><td class="num">${a.rows ?? "–"}</td></tr>${a.error ? `<tr><td></td><td colspan="4"><pre class="error">${esc(a.error)}</pre></td></tr>` : ""}`).join("")}</tbody></table>`
        : empty("It never started: " + (t.reason || t.status))}
      <h2>Checks</h2>
      ${(t.checks || []).length ? `<table id="taskchecks"><thead><tr><th>attempt</th><th>check</th><th>severity</th><th>result</th><th class="num">failing rows</th></tr></thead><tbody>${t.checks.map((c) =>
        `<tr><td>${c.attempt}</td><td><code>${esc(c.name)}</code></td><td>${esc(c.severity)}</td><td>${st(c.status)}</td><td class="num">${c.failures}</td></tr>${c.sample ? `<tr><td></td><td colspan="4"><pre>${esc(JSON.stringify(c.sample, null, 1))}</pre></td></tr>` : ""}`).join("")}</tbody></table>` : empty("No check ran.")}
      <h2>SQL</h2>${sql ? `<pre><code>${esc(sql.sql)}</code></pre>` : empty("Not in the plans on this site.")}`;
  }

  // ------------------------------------------------------------ backfill grid
  const GRID_WINDOW = 45;
  let gridEnd = null;
  function pageGrid() {
    const g = D.grid, n = g.intervals.length;
    if (gridEnd === null) {  // end the window at the newest interval anything happened in
      let last = -1;
      const missing = String(g.states.indexOf("missing"));
      for (const row of g.rows) if (row.kind !== "seed") for (let i = n - 1; i > last; i--) if (row.states[i] !== missing) { last = i; break; }
      gridEnd = last >= 0 ? Math.min(n, last + 1 + 3) : n;
    }
    main.innerHTML = `<h1>Backfill grid</h1>
      <p class="sub">Each model's state per ${esc(D.project.schedule)} interval on target ${esc(D.project.target)} (${n} intervals from the project's start).</p>
      <div class="toolbar" style="border:0;padding-left:0">${filterBox("gq", "", "models")}
        <button class="btn" id="older" aria-label="Older intervals">← older</button><button class="btn" id="newer" aria-label="Newer intervals">newer →</button>
        <span class="legend" id="glegend">${g.states.map((s) => `<span><span class="sw st-${esc(s)}"></span>${esc(s)}</span>`).join("")}</span></div>
      <div class="gridwrap" id="gridwrap"></div>`;
    let chosen = null;
    const draw = () => {
      const end = Math.max(Math.min(gridEnd, n), Math.min(n, GRID_WINDOW)), start = Math.max(0, end - GRID_WINDOW);
      const rows = g.rows.filter((r) => !chosen || chosen.has(r.model));
      const shown = rows.slice(0, 400);
      const head = g.intervals.slice(start, end).map((l) => `<th scope="col">${esc(l)}</th>`).join("");
      const body = shown.map((r) => `<tr><th class="m" scope="row">${modelLink(r.model)}</th>${[...r.states.slice(start, end)].map((c, j) => {
        const s = g.states[+c], tip = `${r.model} · ${g.intervals[start + j]}: ${s}`;
        const run = r.runs && r.runs[start + j];
        return `<td class="cell st-${s}" title="${esc(tip)}">${run ? `<a class="cl" href="#/run/${run}" aria-label="${esc(tip)}, run ${run}"></a>` : ""}</td>`;
      }).join("")}</tr>`).join("");
      document.getElementById("gridwrap").innerHTML = n ? `<table class="grid" id="grid"><thead><tr><th></th>${head}</tr></thead><tbody>${body}</tbody></table>${rows.length > shown.length ? empty(`${rows.length - shown.length} more models: narrow the selection.`) : ""}` : empty("No complete interval since the project's start yet.");
      document.getElementById("older").disabled = start === 0;
      document.getElementById("newer").disabled = end >= n;
    };
    document.getElementById("older").onclick = () => { gridEnd = Math.max(Math.min(n, GRID_WINDOW), gridEnd - GRID_WINDOW); draw(); };
    document.getElementById("newer").onclick = () => { gridEnd = Math.min(n, gridEnd + GRID_WINDOW); draw(); };
    wireFilter("gq", (c) => { chosen = c; draw(); });
  }

  // ------------------------------------------------------------ freshness
  function pageFreshness() {
    const order = { late: 0, "never built": 1, "partial only": 2, fresh: 3, loaded: 4 };
    const rows = D.freshness.slice().sort((a, b) => (order[a.status] - order[b.status]) || ((b.behind || 0) - (a.behind || 0)) || a.model.localeCompare(b.model));
    main.innerHTML = `<h1>Freshness</h1><p class="sub">The newest data interval each model has published on ${esc(D.project.target)}, against the last complete interval of its grain (as of ${esc(D.project.generated_at)}).</p>
      <p>${filterBox("fq", "", "models")}</p><div id="ft"></div>`;
    wireFilter("fq", (chosen) => {
      document.getElementById("ft").innerHTML = `<table id="fresh"><thead><tr><th>model</th><th>kind</th><th>status</th><th>newest data up to</th><th>due up to</th><th class="num">intervals behind</th><th>published at</th><th class="num">late rows</th><th>freshness check</th></tr></thead><tbody>${
        rows.filter((f) => !chosen || chosen.has(f.model)).map((f) => `<tr><td>${modelLink(f.model)}</td><td>${badge(f.kind)}</td><td>${st(f.status)}</td><td>${esc(f.newest_end || "–")}</td><td>${esc(f.kind === "seed" ? "–" : f.due_end)}</td><td class="num">${f.behind ?? "–"}</td><td>${esc(f.published_at || "–")}</td><td class="num">${f.late_rows ? `${f.late_rows[1] > 0 ? "+" : ""}${f.late_rows[1]} in ${f.late_rows[0]} interval${f.late_rows[0] === 1 ? "" : "s"}` : "–"}</td><td>${checkText(f.check)}</td></tr>`).join("")}</tbody></table>`;
    });
  }
  function checkText(c) {  // pipe status --freshness: ok | warn | error | - (no thresholds)
    if (!c || c.status === "-") return '<span class="hint">no freshness: set</span>';
    const limits = [c.warn_after != null ? `warn after ${secs(c.warn_after)}` : "", c.error_after != null ? `error after ${secs(c.error_after)}` : ""].filter(Boolean).join(", ");
    const cls = { ok: "fresh", warn: "late", error: "failed" }[c.status] || "";
    return `<span class="s-${cls}" title="${esc(limits)}">${esc(c.status)}</span> <span class="hint">${esc(limits)}</span>`;
  }

  // ------------------------------------------------------------ routing, keys, theme
  function route() {
    const raw = location.hash.slice(1) || "/";
    const [path, qs] = raw.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(qs || "");
    const page = parts[0] || "dag";
    document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("on",
      a.dataset.page === page || (page === "model" && a.dataset.page === "models") || (page === "run" && a.dataset.page === "runs")));
    main.className = "";
    dagKeys = null;
    if (page === "dag") pageDag(params.get("s"));
    else if (page === "model") pageModel(parts[1], parts[2]);
    else if (page === "models") pageModels();
    else if (page === "runs") pageRuns();
    else if (page === "run") pageRun(parts[1], parts[2] === "task" ? parts[3] : null);
    else if (page === "grid") pageGrid();
    else if (page === "freshness") pageFreshness();
    else main.innerHTML = `<h1>Not found</h1>${empty(raw)}`;
    document.title = `${page === "dag" ? "Graph" : parts.slice(0, 2).join(" ")} · ${D.project.name} · pipe docs`;
    if (page !== "dag") {
      const h = main.querySelector("h1");
      if (h) { h.setAttribute("tabindex", "-1"); h.focus({ preventScroll: true }); }
      if (!parts[2] || page !== "model") main.scrollTop = 0;
    }
  }

  function setTheme(next) {
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("pipe-theme", next); } catch (e) { /* private mode: this page only */ }
  }
  const dark = () => (document.documentElement.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")) === "dark";
  document.getElementById("theme").addEventListener("click", () => setTheme(dark() ? "light" : "dark"));

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement && document.activeElement.tagName);
    if (typing) return;
    const pages = { 1: "#/", 2: "#/models", 3: "#/runs", 4: "#/grid", 5: "#/freshness" };
    if (pages[e.key]) { location.hash = pages[e.key]; e.preventDefault(); return; }
    if (e.key === "t") { setTheme(dark() ? "light" : "dark"); return; }
    if (e.key === "/") {
      const box = main.querySelector('input[type="search"]');
      if (box) { box.focus(); box.select(); e.preventDefault(); }
      return;
    }
    if (dagKeys && dagKeys(e)) e.preventDefault();
  });

  document.getElementById("meta").textContent = `${D.project.name} · target ${D.project.target} (${D.project.adapter}) · built ${D.project.generated_at}`;
  document.getElementById("brand").textContent = `pipe · ${D.project.name}`;
  window.addEventListener("hashchange", route);
  route();

  // under `pipe docs --serve` (http, never file://): reload when a rebuild rewrote data.js
  if (location.protocol === "http:") {
    let stamp = null;
    setInterval(() => {
      fetch("data.js", { method: "HEAD", cache: "no-store" }).then((r) => {
        const now = r.headers.get("Last-Modified");
        if (stamp && now && now !== stamp) location.reload();
        stamp = now || stamp;
      }).catch(() => { /* the server stopped: keep what is on screen */ });
    }, 1500);
  }
})();
