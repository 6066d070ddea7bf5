// postdesk dashboard: when the server says the figures changed, reload the tiles and the
// panels (charts, agent table, red alerts) in place.
"use strict";
(function () {
  let running = false;
  let again = false;
  async function get(path) {
    const r = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) { window.location.assign("/login"); return null; }
    return r.ok ? r : null;
  }
  // Both answers first, then one change to the page: tiles and panels never disagree.
  async function refresh() {
    const [tiles, panels] = await Promise.all([get("/dashboard/tiles.json"), get("/dashboard/panels")]);
    if (!tiles || !panels) return;
    const data = await tiles.json();
    const markup = await panels.text();
    for (const [id, value] of Object.entries(data.tiles)) {
      const el = document.getElementById("tile-" + id);
      if (el && el.textContent !== String(value)) { el.textContent = String(value); }
    }
    const upd = document.getElementById("updated");
    if (upd) upd.textContent = data.updated;
    const box = document.getElementById("panels");
    // Our own server's markup, every outside string escaped there.
    if (box) box.innerHTML = markup;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
  // One refresh at a time; a change during one asks for one more after it.
  async function changed() {
    if (running) { again = true; return; }
    running = true;
    try {
      do { again = false; await refresh(); } while (again);
    } catch (e) {
      // The next change tries again.
    } finally {
      running = false;
    }
  }
  const source = new EventSource("/dashboard/events");
  source.addEventListener("changed", changed);
  // The session is over (logged out elsewhere, ended by an admin): back to the form.
  source.addEventListener("ended", function () {
    source.close();
    window.location.assign("/login");
  });
})();
