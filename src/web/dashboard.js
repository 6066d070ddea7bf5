// postdesk dashboard: reload the tiles when the server says the figures changed.
"use strict";
(function () {
  async function refresh() {
    const r = await fetch("/dashboard/tiles.json", { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { window.location.assign("/login"); return; }
    if (!r.ok) return;
    const data = await r.json();
    for (const [id, value] of Object.entries(data.tiles)) {
      const el = document.getElementById("tile-" + id);
      if (el && el.textContent !== String(value)) { el.textContent = String(value); }
    }
    const upd = document.getElementById("updated");
    if (upd) upd.textContent = data.updated;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
  const source = new EventSource("/dashboard/events");
  source.addEventListener("changed", function () { refresh().catch(function () {}); });
})();
