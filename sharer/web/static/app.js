// sharer dashboard: plain JavaScript, no build step, no framework.
// - the header menu opens and closes on a phone;
// - the compose page draws each post through POST /compose/preview (debounced) as you type, and picks
//   "At" when a date is chosen;
// - the share page follows its deliveries live over Server-Sent Events (GET /api/events).
// User-provided text is only ever set with textContent / value; HTML comes from our escaped templates.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const T = JSON.parse(document.getElementById("i18n")?.textContent || "{}");
  const t = (k) => T[k] || k;
  document.documentElement.classList.add("js");

  // times are rendered by the server in the reader's language and zone; the exact instant on hover
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => { el.title = el.getAttribute("datetime"); });
  }
  localTimes(document);

  const toggle = document.querySelector(".menu-toggle");
  const menu = document.getElementById("site-menu");
  if (toggle && menu) {
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }

  // --- share page: live deliveries ------------------------------------------------------------
  const box = document.getElementById("deliveries");
  if (box && window.EventSource) {
    const id = box.dataset.share;
    const live = document.getElementById("live");
    let timer = null;
    const refresh = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const r = await fetch(`/shares/${encodeURIComponent(id)}/deliveries`, { credentials: "same-origin" });
        if (r.ok) {
          // keep what the reader has open or typed across the redraw
          const open = [...box.querySelectorAll("details[id][open]")].map((d) => d.id);
          const typed = [...box.querySelectorAll("input[id]")].filter((i) => i.value !== i.defaultValue)
            .map((i) => [i.id, i.value]);
          const focused = document.activeElement && box.contains(document.activeElement) ? document.activeElement.id : "";
          box.innerHTML = await r.text(); // our own server-rendered, escaped fragment
          open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
          typed.forEach(([id, v]) => { const i = document.getElementById(id); if (i) i.value = v; });
          if (focused) document.getElementById(focused)?.focus();
          localTimes(box);
        }
      }, 80);
    };
    const es = new EventSource(`/api/events?share=${encodeURIComponent(id)}`);
    es.addEventListener("hello", () => {
      live.textContent = t("live");
      live.className = "live on";
      refresh(); // anything that changed between rendering and subscribing
    });
    es.addEventListener("delivery", refresh);
    es.onerror = () => {
      live.textContent = t("reconnecting");
      live.className = "live";
    };
  }

  // --- compose page ----------------------------------------------------------------------------
  const form = document.getElementById("compose");
  if (form) compose(form);

  function compose(form) {
    const tpl = document.getElementById("card-template");
    const area = document.getElementById("previews");
    const empty = document.getElementById("previews-empty");
    const btn = document.getElementById("share-btn");
    const state = document.getElementById("compose-state");
    const articleError = document.getElementById("article-error");
    const initial = JSON.parse(document.getElementById("initial-texts").textContent || "{}");
    const cards = new Map(); // account -> {el, ta, dirty, ok}
    let timer = null;
    let seq = 0;
    let pending = false;
    let articleOk = false;

    const value = (name) => (form.elements[name]?.value ?? "").trim();
    const selected = () => [...form.querySelectorAll('input[name="accounts"]:checked')].map((i) => i.value);

    function article() {
      const a = { title: value("title"), url: value("url"), summary: value("summary"),
        body_html: form.elements.body_html.value,
        tags: value("tags").split(",").map((s) => s.trim()).filter(Boolean) };
      for (const n of ["image", "author", "published_at", "lang"]) if (value(n)) a[n] = value(n);
      return a;
    }

    function setDirty(c, name, on) {
      c.dirty = on;
      if (on) c.ta.name = "text." + name; else c.ta.removeAttribute("name"); // only edited texts are sent
      c.el.querySelector(".reset").hidden = !on;
      c.el.classList.toggle("edited", on);
    }

    function card(name, platform) {
      let c = cards.get(name);
      if (c) return c;
      const el = tpl.content.firstElementChild.cloneNode(true);
      el.dataset.account = name;
      el.querySelector(".acct").textContent = name;
      el.querySelector(".plat").textContent = platform;
      c = { el, ta: el.querySelector("textarea"), dirty: false, ok: false };
      if (initial[name] !== undefined) {
        c.ta.value = initial[name];
        setDirty(c, name, true);
      }
      c.ta.addEventListener("input", () => { setDirty(c, name, true); later(); });
      el.querySelector(".reset").addEventListener("click", () => { setDirty(c, name, false); later(0); });
      cards.set(name, c);
      return c;
    }

    function sync() {
      const names = selected();
      for (const [n, c] of cards) if (!names.includes(n)) c.el.remove();
      for (const input of form.querySelectorAll('input[name="accounts"]:checked')) {
        area.appendChild(card(input.value, input.dataset.platformTitle || input.dataset.platform).el);
      }
      empty.hidden = names.length > 0;
    }

    function problems(data) {
      const d = data && data.detail;
      if (Array.isArray(d)) return d.map((p) => `${p.field || (p.loc || []).join(".")}: ${p.msg}`).join("; ");
      return String(d || t("failed"));
    }

    function show(c, p) {
      if (!c) return;
      c.ok = !p.error;
      if (!c.dirty && p.text !== null) c.ta.value = p.text;
      const counter = c.el.querySelector(".counter");
      counter.textContent = p.length !== null && p.limit !== null ? `${p.length}/${p.limit} ${p.unit_words || p.unit}` : "";
      counter.classList.toggle("over", p.length !== null && p.limit !== null && p.length > p.limit);
      c.el.querySelector(".error").textContent = p.error || "";
      c.el.querySelector(".look-box").innerHTML = p.look || ""; // our own server-rendered, sanitised drawing
      c.el.classList.toggle("invalid", Boolean(p.error));
      c.el.querySelector(".warnings").replaceChildren(...p.warnings.map((w) => {
        const li = document.createElement("li");
        li.textContent = w;
        return li;
      }));
    }

    function update() {
      const names = selected();
      const ok = names.length > 0 && articleOk && !pending && names.every((n) => cards.get(n)?.ok);
      btn.disabled = !ok;
      form.dataset.state = pending ? "checking" : ok ? "ready" : "invalid";
      state.textContent = pending ? t("checking") : ok ? "" : names.length ? t("fix") : "";
    }

    function later(ms = 300) {
      pending = true;
      update();
      clearTimeout(timer);
      timer = setTimeout(run, ms);
    }

    async function run() {
      sync();
      const names = selected();
      if (!names.length) { pending = false; update(); return; }
      const texts = {};
      for (const n of names) if (cards.get(n).dirty) texts[n] = cards.get(n).ta.value;
      const mine = ++seq;
      let resp, data;
      try {
        resp = await fetch("/compose/preview", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ article: article(), accounts: names, texts }),
        });
        data = await resp.json();
      } catch (e) {
        if (mine === seq) { articleOk = false; articleError.textContent = t("unavailable"); pending = false; update(); }
        return;
      }
      if (mine !== seq) return; // a newer request is on its way
      pending = false;
      if (!resp.ok) {
        articleOk = false;
        articleError.textContent = problems(data);
      } else {
        articleOk = true;
        articleError.textContent = "";
        for (const p of data.posts) show(cards.get(p.account), p);
      }
      update();
    }

    const atInput = form.elements.at;
    const atRadio = document.getElementById("when-at");
    const zoneLabel = document.getElementById("at-zone");
    // the "When" trap: choosing a date means "at that date"
    const said = document.getElementById("at-said");
    const pickAt = () => {
      if (atInput.value && atRadio) atRadio.checked = true;
      if (!said) return;
      // the chosen time written out in the page's language (the native control follows the browser's)
      const [d, tm] = atInput.value.split("T");
      if (!d || !tm) { said.textContent = ""; return; }
      const [y, mo, da] = d.split("-").map(Number);
      const [h, mi] = tm.split(":").map(Number);
      const shown = new Date(Date.UTC(y, mo - 1, da, h, mi));
      const f = new Intl.DateTimeFormat(document.documentElement.lang || undefined,
        { dateStyle: "full", timeStyle: "short", timeZone: "UTC" });
      said.textContent = `→ ${f.format(shown)} (${value("tz")})`;
    };
    atInput?.addEventListener("input", pickAt);
    atInput?.addEventListener("change", pickAt);
    form.elements.tz?.addEventListener("input", () => { if (zoneLabel) zoneLabel.textContent = `(${value("tz")})`; });
    const whenTz = ["at", "tz", "when", "force", "idempotency_key"];
    form.addEventListener("input", (e) => { if (!e.target.closest(".preview") && !whenTz.includes(e.target.name)) later(); });
    form.addEventListener("change", (e) => { if (e.target.name === "accounts") later(0); });
    form.addEventListener("submit", (e) => { if (btn.disabled) e.preventDefault(); });
    later(0);
  }
})();
