// The orders console's one script: the live feed (server-sent events, a type filter, pause)
// and the refresh of the health charts. Every page works without it except those live parts.
"use strict";

function liveFeed(table) {
  const rows = table.querySelector("[data-feed-rows]");
  const state = document.querySelector("[data-feed-state]");
  const filter = document.querySelector("[data-feed-filter]");
  const pause = document.querySelector("[data-feed-pause]");
  let paused = false;
  let held = [];
  const shown = (tr) => !filter.value || tr.dataset.type === filter.value;
  const say = (text) => { state.textContent = text; };

  const row = (event) => {
    const tr = document.createElement("tr");
    tr.dataset.type = event.event_type;
    const cell = (text, cls) => {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.textContent = text;
      tr.appendChild(td);
      return td;
    };
    cell(String(event.position), "num");
    cell(event.event_type);
    const stream = cell("", "mono");
    if (event.aggregate_type === "Order") {
      const a = document.createElement("a");
      a.href = "/console/orders/" + encodeURIComponent(event.aggregate_id);
      a.textContent = event.aggregate_id;
      stream.appendChild(a);
    } else {
      stream.textContent = event.aggregate_type + " " + event.aggregate_id;
    }
    cell(String(event.version), "num");
    // As the server renders times: UTC to the millisecond.
    cell(String(event.recorded_at).replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace(/(Z|\+00:00)$/, ""));
    cell(event.user_id == null ? "—" : String(event.user_id));
    tr.classList.toggle("hidden", !shown(tr));
    return tr;
  };

  const show = (tr) => {
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > 500) rows.removeChild(rows.lastChild);
  };

  filter.addEventListener("change", () => {
    for (const tr of rows.children) tr.classList.toggle("hidden", !shown(tr));
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) { held.forEach(show); held = []; say("Live"); }
    else say("Paused");
  });

  const source = new EventSource("/console/feed/events?after=" + encodeURIComponent(table.dataset.after));
  source.addEventListener("open", () => say(paused ? "Paused" : "Live"));
  source.addEventListener("error", () => say("Reconnecting…"));
  source.addEventListener("feed", (message) => {
    const tr = row(JSON.parse(message.data));
    if (paused) { held.push(tr); say("Paused (" + held.length + " new)"); }
    else show(tr);
  });
}

function refreshCharts(box) {
  setInterval(async () => {
    try {
      const answer = await fetch(box.dataset.refresh, { credentials: "same-origin" });
      if (answer.ok) box.innerHTML = await answer.text();
    } catch (_) { /* the next tick tries again */ }
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const feed = document.querySelector("[data-feed]");
  if (feed) liveFeed(feed);
  const charts = document.querySelector("[data-charts]");
  if (charts) refreshCharts(charts);
});
