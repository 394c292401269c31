/* tuner's dashboard: live fleet table and function charts; plain JavaScript, no build. */
const tuner = (() => {
  const poll = Number(document.body.dataset.poll) || 3000;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  // one time format everywhere: ISO 8601 in UTC, to the second, as the CLI and messages
  const clock = (t) => (t ? new Date(t * 1000).toISOString().replace(/\.\d+Z$/, "Z") : "");
  const slug = (s) => String(s || "").replace(/ /g, "-");
  const num = (v) => (v === null || v === undefined ? "-" : Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000));

  async function json(url) {
    const r = await fetch(url, {headers: {accept: "application/json"}});
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  async function status() {
    try {
      const s = await json("/api/status");
      const el = document.getElementById("status");
      el.textContent = `${s.functions} functions · cycle ${s.cycles} · ${s.why}`;
      el.className = "status " + (s.ready ? "ok" : "bad");
    } catch (e) { /* the daemon is restarting: keep the last line */ }
  }

  function fleetRow(r) {
    const c = r.last_change;
    const change = c ? `${esc(c.change)} <small>(${esc(c.rule)}, ${esc(c.state)}, <time>${clock(c.at)}</time>)</small>` : "-";
    const scope = r.scope ? ` <small>${esc(r.scope)}</small>` : "";
    const sev = r.severity ? `<span class="sev sev-${esc(r.severity)}">${esc(r.severity)}</span>` : "";
    return `<tr data-key="${esc(r.key)}"><td><a href="/functions/${encodeURIComponent(r.key)}">${esc(r.name)}</a>${scope}</td>` +
      `<td>${esc(r.provider)}</td><td><span class="badge s-${slug(r.state)}">${esc(r.state)}</span></td>` +
      `<td>${change}</td><td>${sev}</td></tr>`;
  }

  function fleet(page) {
    const q = document.getElementById("q"), state = document.getElementById("state"), provider = document.getElementById("provider");
    let timer = null;
    async function load() {
      const params = new URLSearchParams({q: q.value, state: state.value, provider: provider.value, page: String(page)});
      const data = await json("/api/fleet?" + params);
      page = data.page;
      document.querySelector("#fleet tbody").innerHTML = data.rows.map(fleetRow).join("") ||
        '<tr><td colspan="5">no function matches</td></tr>';
      document.getElementById("counts").innerHTML = Object.entries(data.counts)
        .map(([s, n]) => `<span class="badge s-${slug(s)}">${esc(s)} ${n}</span>`).join(" ");
      for (const opt of state.options) {
        if (opt.value) opt.textContent = `${opt.value} (${data.counts[opt.value] || 0})`;
        else opt.textContent = `every state (${data.fleet})`;
      }
      document.getElementById("pageinfo").textContent = `page ${data.page} of ${data.pages}, ${data.total} shown of ${data.fleet}`;
      history.replaceState(null, "", "/?" + params);
    }
    const again = () => { page = 1; clearTimeout(timer); timer = setTimeout(load, 150); };
    q.addEventListener("input", again);
    state.addEventListener("change", again);
    provider.addEventListener("change", again);
    document.getElementById("prev").addEventListener("click", () => { page = Math.max(1, page - 1); load(); });
    document.getElementById("next").addEventListener("click", () => { page += 1; load(); });
    setInterval(() => { load().catch(() => {}); status(); }, poll);
  }

  function markerPlugin(markers) {
    return {hooks: {draw: [(u) => {
      const ctx = u.ctx;
      ctx.save();
      ctx.strokeStyle = "#c0392b";
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash([6, 4]);
      for (const m of markers) {
        const x = u.valToPos(m.time, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
      }
      ctx.restore();
    }]}};
  }

  const CHARTS = [
    ["chart-memory", [["peak_memory_mb", "peak MB", "#2e86de"], ["memory_mb", "limit MB", "#888"]]],
    ["chart-duration", [["duration_p95_ms", "p95 ms", "#2e86de"], ["timeout_ms", "timeout ms", "#888"]]],
    ["chart-rates", [["oom_rate", "OOM rate", "#c0392b"], ["timeout_rate", "timeout rate", "#e67e22"], ["error_rate", "error rate", "#8e44ad"]]],
    ["chart-deps", [["dependency_latency_p95_ms", "latency p95 ms", "#16a085"]]],
  ];
  const plots = {};
  const EMPTY = {
    "chart-memory": "no memory measured in the kept windows",
    "chart-duration": "no invocations in the kept windows",
    "chart-rates": "no invocations in the kept windows",
    "chart-deps": "it called no dependency in the kept windows",
  };
  // wide enough for the longest label (10,000 and beyond are never clipped)
  const axisWidth = (u, values) => 16 + 8 * Math.max(3, ...(values || []).map((v) => String(v).length));

  function draw(fn) {
    const h = fn.history;
    for (const [id, series] of CHARTS) {
      const el = document.getElementById(id);
      const data = [h.time, ...series.map(([name]) => h[name])];
      el.dataset.points = String(h.time.length);
      el.dataset.markers = String(fn.markers.length);
      el.dataset.values = series.map(([name]) => h[name].filter((v) => v !== null).length).join(",");
      if (plots[id]) plots[id].destroy();
      const opts = {
        width: Math.max(280, el.clientWidth), height: 200,
        series: [{}, ...series.map(([, label, stroke]) => ({label, stroke, width: 2, spanGaps: false}))],
        // from zero up, with headroom: a flat line stays flat (never 320-321 ms across the chart)
        scales: {x: {time: true}, y: {range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.15 : 1]}},
        axes: [
          {space: 90, values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(11, 16))},
          {size: axisWidth, values: (u, ticks) => ticks.map((v) => v.toLocaleString("en"))},
        ],
        plugins: [markerPlugin(fn.markers)],
      };
      plots[id] = new uPlot(opts, data, el);
      const empty = series.every(([name]) => h[name].every((v) => v === null));
      el.dataset.empty = empty ? "yes" : "";
      let why = el.parentElement.querySelector(".empty");
      if (empty && !why) {
        why = document.createElement("p");
        why.className = "empty";
        el.before(why);
      }
      if (why) why.textContent = empty ? EMPTY[id] : "";
      let list = el.nextElementSibling;
      if (!list || !list.classList.contains("markers")) {
        list = document.createElement("ul");
        list.className = "markers";
        el.after(list);
      }
      list.innerHTML = fn.markers.map((m) => `<li>${clock(m.time)} ${esc(m.text)} <small>(${esc(m.state)})</small></li>`).join("");
    }
  }

  function fn(key) {
    const url = "/api/functions/" + encodeURIComponent(key);
    const load = async () => {
      const data = await json(url);
      draw(data);
      const badge = document.getElementById("state");
      badge.textContent = data.state;
      badge.className = "badge s-" + slug(data.state);
    };
    load().catch((e) => console.error(e));
    setInterval(() => { load().catch(() => {}); status(); }, Math.max(poll, 5000));
  }

  async function act(button) {
    let token = sessionStorage.getItem("tuner-token");
    if (!token) {
      token = prompt("The dashboard's token (TUNER_WEB_TOKEN):");
      if (!token) return;
      sessionStorage.setItem("tuner-token", token);
    }
    const body = {by: localStorage.getItem("tuner-name") || "", function: button.dataset.function, decision: button.dataset.decision};
    const r = await fetch("/api/actions/" + button.dataset.action, {
      method: "POST", headers: {"Content-Type": "application/json", Authorization: "Bearer " + token}, body: JSON.stringify(body),
    });
    const answer = await r.json();
    if (r.status === 401) sessionStorage.removeItem("tuner-token");
    if (!r.ok) { alert(answer.error); return; }
    location.reload();
  }

  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-action]");
    if (button) act(button).catch((err) => alert(err));
  });

  document.addEventListener("DOMContentLoaded", () => {
    const {page, key} = document.body.dataset;
    if (page === "fleet") fleet(Number(new URLSearchParams(location.search).get("page")) || 1);
    if (page === "function") fn(key);
  });
  return {fleet, function: fn, num, charts: plots};
})();
