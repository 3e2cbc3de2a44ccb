// "Send the preview to this phone" on the compose page (WeChat accounts): POST /api/previews/phone
// with the article as typed and the checked accounts; says what was sent, or WeChat's reason.
"use strict";
(function () {
  const form = document.getElementById("compose");
  const btn = document.getElementById("phone-btn");
  const to = document.getElementById("phone-to");
  const state = document.getElementById("phone-state");
  if (!form || !btn || !to || !state) return;
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const value = (name) => (form.elements[name]?.value ?? "").trim();
  const T = JSON.parse(document.getElementById("i18n")?.textContent || "{}"); // the page's language
  const t = (k, fallback) => T[k] || fallback;

  function article() {
    const a = { title: value("title"), url: value("url"), summary: value("summary"),
      body_html: form.elements.body_html.value,
      tags: value("tags").split(",").map((s) => s.trim()).filter(Boolean) };
    for (const n of ["image", "author", "published_at", "lang"]) if (value(n)) a[n] = value(n);
    return a;
  }

  btn.addEventListener("click", async () => {
    const accounts = [...form.querySelectorAll('input[name="accounts"]:checked')]
      .filter((i) => i.dataset.platform === "wechat").map((i) => i.value);
    if (!accounts.length) { state.textContent = t("phone_choose", "Choose a WeChat account above first."); return; }
    if (!to.value.trim()) { state.textContent = t("phone_to", "Enter the WeChat ID of the phone to send it to."); return; }
    btn.disabled = true;
    state.textContent = t("phone_sending", "Creating the draft and sending it…");
    try {
      const resp = await fetch("/api/previews/phone", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ article: article(), accounts, send_to: to.value.trim() }),
      });
      const data = await resp.json().catch(() => ({}));
      if (resp.ok) {
        const sent = t("phone_sent", "sent to");
        state.textContent = data.sent.map((s) => `${s.account}: ${sent} ${s.to} (msg_id ${s.msg_id})`).join("; ");
      } else {
        const d = data.detail;
        state.textContent = t("phone_not_sent", "Not sent:") + " " + (Array.isArray(d) ? d.map((x) => `${x.field}: ${x.msg}`).join("; ") : d);
      }
    } catch (e) {
      state.textContent = t("phone_unreachable", "Not sent: the server could not be reached.");
    } finally {
      btn.disabled = false;
    }
  });
})();
