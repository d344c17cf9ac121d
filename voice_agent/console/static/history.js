// History: calls with filters and one call's transcript (interrupted lines marked) and
// recording; bookings of the next days; the message inbox with "Mark handled".
"use strict";

(() => {
  const VA = window.VA;
  const {
    $, el, fill, markEmpty, show, toast, badge, phone, state, api, problem, getJson, quietly,
    when, businessDate, clock, outcome, AuthError,
  } = VA;

  // ---- history: calls ------------------------------------------------------------------

  async function loadCalls(more = false) {
    const form = new FormData($("#call-filters"));
    const query = new URLSearchParams();
    for (const key of ["caller", "outcome", "since", "until"]) {
      const value = String(form.get(key) || "").trim();
      if (value) query.set(key, value);
    }
    state.callsOffset = more ? state.callsOffset : 0;
    query.set("limit", "25");
    query.set("offset", String(state.callsOffset));
    const error = $("#calls-error");
    let page;
    try {
      page = await getJson(`/api/calls?${query}`);
    } catch (err) {
      if (err instanceof AuthError) return;
      error.textContent = String(err.message || err);
      show(error, true);
      return;
    }
    show(error, false);
    const rows = page.items.map((c) =>
      el("li", { class: "row", "data-call-sid": c.call_sid },
        el("button", { type: "button", class: "row-button", onclick: () => quietly(openCall(c.call_sid)) },
          el("span", { class: "when", text: when(c.started_at) }),
          el("span", { class: "from", text: c.from }),
          el("span", { class: `pill outcome ${c.outcome || "live"}`, text: outcome(c.outcome) }),
          el("span", { class: "duration", text: c.duration_s ? clock(c.duration_s * 1000) : "" }))));
    const list = $("#call-list");
    if (more) list.append(...rows);
    else fill(list, rows);
    state.callsOffset += page.items.length;
    $("#calls-total").textContent = `${page.total} call${page.total === 1 ? "" : "s"}`;
    show($("#calls-more"), state.callsOffset < page.total);
  }

  function segmentItem(s) {
    const item = el("li", {
      class: `line ${s.speaker}${s.interrupted ? " interrupted" : ""}`,
      "data-interrupted": s.interrupted ? "true" : null,
    }, el("span", { class: "at", text: clock(s.start_ms) }),
    el("span", { class: "who", text: s.speaker === "agent" ? "Agent" : "Caller" }));
    if (!s.interrupted) {
      item.append(el("span", { class: "text", text: s.text }));
      return item;
    }
    const heard = s.heard_text || "";
    const text = el("span", { class: "text" });
    if (heard && s.text.startsWith(heard)) {
      text.append(heard, el("del", { class: "unheard", title: "never heard: the caller talked over it", text: s.text.slice(heard.length) }));
    } else if (heard) {
      text.append(s.text, el("span", { class: "hint", text: ` (heard: ${heard})` }));
    } else {
      text.append(el("del", { class: "unheard", title: "never heard: the caller talked over it", text: s.text }));
    }
    item.append(text, el("span", { class: "tag", text: "interrupted" }));
    return item;
  }

  function outcomeDetails(call) {
    const parts = [];
    if (call.booking) {
      const b = call.booking;
      parts.push(el("p", {}, el("strong", { text: "Booking: " }),
        `${when(b.scheduled_for)}, ${b.name || ""}, ${b.address || ""} (${b.problem || b.service || ""})`));
    }
    if (call.message) {
      const m = call.message;
      parts.push(el("p", {}, el("strong", { text: "Message: " }),
        `${m.name || ""} ${m.callback_number || ""}: ${m.reason || m.text || ""}`));
    }
    if (call.handoff) {
      const h = call.handoff;
      parts.push(el("p", {}, el("strong", { text: "Handoff: " }),
        `${(h.reason || "").replaceAll("_", " ")}, ${h.summary || ""} (to ${h.dispatcher || "nobody on call"}, ${h.dial_status || "not dialled"})`));
    }
    return parts;
  }

  function recordingPlayer(call) {
    if (!call.recording) return null;
    const audio = el("audio", { controls: true, preload: "none", class: "recording" });
    const seconds = call.recording.duration_s ? ` (${clock(call.recording.duration_s * 1000)})` : "";
    const button = el("button", { type: "button", class: "quiet", text: `Load the recording${seconds}` });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const res = await api(call.recording.url, { headers: { Accept: "audio/wav" } });
        if (!res.ok) throw new Error(await problem(res));
        if (state.recordingUrl) URL.revokeObjectURL(state.recordingUrl);
        state.recordingUrl = URL.createObjectURL(await res.blob());
        audio.src = state.recordingUrl;
        audio.dataset.loaded = "true";
        button.hidden = true;
      } catch (err) {
        if (!(err instanceof AuthError)) toast(`Recording: ${err.message || err}`);
        button.disabled = false;
      }
    });
    return el("div", { class: "player" }, audio, button);
  }

  async function openCall(sid) {
    const call = await getJson(`/api/calls/${encodeURIComponent(sid)}`);
    const detail = $("#call-detail");
    closeDetail();
    detail.dataset.callSid = sid;
    detail.append(
      el("header", {},
        el("h3", {}, phone(call.from)),
        el("button", { type: "button", class: "quiet close", text: "Close", onclick: closeDetail })),
      el("p", { class: "meta" },
        `${when(call.started_at)} · ${outcome(call.outcome)}`,
        call.duration_s ? ` · ${clock(call.duration_s * 1000)}` : ""),
      ...outcomeDetails(call),
      recordingPlayer(call),
      el("ol", { class: "transcript history" }, ...call.transcript.map(segmentItem)));
    show(detail, true);
    detail.scrollIntoView({ block: "start" });
  }

  function closeDetail() {
    const detail = $("#call-detail");
    detail.replaceChildren();
    delete detail.dataset.callSid;
    show(detail, false);
    if (state.recordingUrl) URL.revokeObjectURL(state.recordingUrl);
    state.recordingUrl = null;
  }

  // ---- bookings ------------------------------------------------------------------------

  async function loadBookings() {
    const days = Number($("#booking-filters [name=days]").value || 7);
    const last = businessDate(new Date(Date.now() + (days - 1) * 86400000));
    const query = new URLSearchParams({ from: new Date().toISOString(), to: last, limit: "200" });
    const page = await getJson(`/api/bookings?${query}`);
    const groups = new Map();
    for (const b of page.items) {
      const day = b.scheduled_for.slice(0, 10); // already in the business's time zone
      if (!groups.has(day)) groups.set(day, []);
      groups.get(day).push(b);
    }
    const sections = [...groups].map(([, items]) =>
      el("section", { class: "day" },
        el("h3", { text: when(items[0].scheduled_for, "day") }),
        el("ul", { class: "list" }, ...items.map((b) =>
          el("li", { class: "row booking", "data-booking-id": b.id },
            el("span", { class: "when", text: when(b.scheduled_for, "time") }),
            el("span", { class: "what" }, el("strong", { text: b.name || "No name" }), ` · ${b.service || b.problem || ""}`),
            el("span", { class: "where", text: b.address || "" }),
            el("span", {}, phone(b.phone)))))));
    fill($("#booking-list"), sections);
  }

  // ---- messages ------------------------------------------------------------------------

  function messageItem(m) {
    const button = el("button", { type: "button", class: "handle", text: "Mark handled" });
    const item = el("li", { class: `row message${m.handled ? " handled" : ""}`, "data-message-id": m.id },
      el("span", { class: "when", text: when(m.created_at) }),
      el("span", { class: "what" }, el("strong", { text: m.name || "No name" }), " · ", phone(m.callback_number)),
      el("span", { class: "reason", text: m.reason || "" }),
      m.best_time ? el("span", { class: "hint", text: `Best time: ${m.best_time}` }) : null,
      m.text && m.text !== m.reason ? el("span", { class: "text", text: m.text }) : null,
      m.handled ? el("span", { class: "pill", text: `handled ${when(m.handled_at)}` }) : button);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const res = await api(`/api/messages/${m.id}/handled`, { method: "POST" });
        if (!res.ok) throw new Error(await problem(res));
        const updated = await res.json();
        if ($("#message-filters [name=all]").checked) item.replaceWith(messageItem(updated));
        else item.remove();
        markEmpty($("#message-list"));
        badge("#badge-messages", $("#message-list").querySelectorAll(".message:not(.handled)").length);
      } catch (err) {
        if (!(err instanceof AuthError)) toast(String(err.message || err));
        button.disabled = false;
      }
    });
    return item;
  }

  async function loadMessages() {
    const all = $("#message-filters [name=all]").checked;
    const page = await getJson(`/api/messages?limit=100${all ? "" : "&handled=false"}`);
    fill($("#message-list"), page.items.map(messageItem));
    badge("#badge-messages", page.items.filter((m) => !m.handled).length);
  }

  VA.history = { loadCalls, openCall, closeDetail, loadBookings, loadMessages };
})();
