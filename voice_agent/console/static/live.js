// Live: calls in progress with their transcript as it grows, handoff cards with a Claim
// button, and the activity list; fed by the events of the live feed.
"use strict";

(() => {
  const VA = window.VA;
  const {
    $, el, markEmpty, toast, activity, badge, phone, currentTab, state, api, problem, getJson,
    quietly, when, outcome, AuthError,
  } = VA;

  const handlers = {
    "call.started"(sid, data) {
      const call = liveCall(sid);
      call.from = data.from || call.from;
      renderCall(call);
      activity(`Call from ${call.from || "unknown number"} started`);
    },
    "call.transcript"(sid, data) {
      const call = liveCall(sid);
      const line = { speaker: data.speaker, text: data.text };
      call.lines.push(line);
      renderCall(call);
      for (const list of document.querySelectorAll(`[data-transcript-of="${CSS.escape(sid)}"]`)) {
        list.append(lineItem(line));
        markEmpty(list);
      }
    },
    "call.handoff"(sid, data) {
      const call = liveCall(sid);
      call.from = call.from || data.caller;
      renderCall(call);
      showHandoff({
        id: null, call_sid: sid, caller: data.caller, reason: data.reason,
        summary: data.summary, dispatcher: data.dispatcher, claim: null,
      });
      activity(`Handoff: ${data.reason || "to a dispatcher"} (${data.caller || "unknown number"})`);
      toast(`Handoff from ${data.caller || "a caller"}: ${data.reason || ""}`);
      resolveHandoffIds(3);
    },
    "call.ended"(sid, data) {
      const call = liveCall(sid);
      call.ended = true;
      call.outcome = data.outcome;
      renderCall(call);
      activity(`Call from ${call.from || "unknown number"} ended: ${outcome(data.outcome)}`);
      setTimeout(() => {
        state.calls.delete(sid);
        const card = $(`#live-calls [data-call-sid="${CSS.escape(sid)}"]`);
        if (card) card.remove();
        markEmpty($("#live-calls"));
      }, 15000);
      quietly(VA.history.loadCalls());
    },
    "booking.created"(sid, data) {
      const b = data.booking || {};
      activity(`Booked: ${b.name || "a caller"}, ${when(b.scheduled_for)}, ${b.address || ""}`);
      toast("New booking");
      quietly(VA.history.loadBookings());
    },
    "message.created"(sid, data) {
      const m = data.message || {};
      activity(`Message from ${m.name || m.callback_number || "a caller"}: ${m.reason || ""}`);
      toast("New message");
      quietly(VA.history.loadMessages());
    },
    "handoff.claimed"(sid, data) {
      const handoff = state.handoffs.get(sid);
      if (handoff) {
        handoff.claim = data;
        handoff.id = handoff.id || data.handoff_id;
        renderHandoff(handoff);
      }
    },
  };

  function dispatch({ type, body }) {
    const handler = handlers[type];
    if (handler && body) handler(body.call_sid, body.data || {});
    if (type === "call.handoff" && currentTab() !== "live") badge("#badge-live", state.handoffs.size);
  }

  // ---- live: calls in progress ----------------------------------------------------------

  function liveCall(sid) {
    let call = state.calls.get(sid);
    if (!call) {
      call = { sid, from: null, lines: [], ended: false, outcome: null, joined: false };
      state.calls.set(sid, call);
    }
    return call;
  }

  function lineItem(line) {
    const who = line.speaker === "agent" ? "Agent" : "Caller";
    return el("li", { class: `line ${line.speaker}` },
      el("span", { class: "who", text: who }), el("span", { class: "text", text: line.text }));
  }

  function renderCall(call) {
    const list = $("#live-calls");
    let card = $(`[data-call-sid="${CSS.escape(call.sid)}"]`, list);
    if (!card) {
      card = el("article", { class: "card call", "data-call-sid": call.sid },
        el("header", {}, el("strong", { class: "caller-number" }), el("span", { class: "pill" })),
        call.joined ? el("p", { class: "hint", text: "Joined during the call: earlier lines are not shown." }) : null,
        el("ol", { class: "transcript", "data-transcript-of": call.sid, "data-empty": "No lines yet." }));
      list.prepend(card);
      const ol = $("ol", card);
      for (const line of call.lines) ol.append(lineItem(line));
      markEmpty(ol);
    }
    $(".caller-number", card).replaceChildren(phone(call.from));
    card.dataset.state = call.ended ? "ended" : "live";
    $(".pill", card).textContent = call.ended ? `ended: ${outcome(call.outcome)}` : "in progress";
    markEmpty(list);
  }

  // ---- live: handoffs ------------------------------------------------------------------

  function showHandoff(handoff) {
    const known = state.handoffs.get(handoff.call_sid);
    if (known) Object.assign(known, Object.fromEntries(Object.entries(handoff).filter(([, v]) => v !== null)));
    else state.handoffs.set(handoff.call_sid, handoff);
    renderHandoff(state.handoffs.get(handoff.call_sid));
  }

  function renderHandoff(h) {
    const list = $("#handoffs");
    let card = $(`[data-handoff-call="${CSS.escape(h.call_sid)}"]`, list);
    if (!card) {
      const transcript = el("ol", {
        class: "transcript", "data-transcript-of": h.call_sid, "data-empty": "No lines yet.",
      });
      for (const line of (state.calls.get(h.call_sid) || { lines: [] }).lines) transcript.append(lineItem(line));
      markEmpty(transcript);
      card = el("article", { class: "card handoff", "data-handoff-call": h.call_sid },
        el("header", {}, el("strong", { text: "Handoff" }), el("span", { class: "pill urgent reason" })),
        el("p", { class: "caller-number" }),
        el("p", { class: "summary" }),
        el("details", { open: true }, el("summary", { text: "Transcript so far" }), transcript),
        el("p", { class: "claim-state" }),
        el("button", { type: "button", class: "claim", text: "Claim", onclick: () => claim(h.call_sid) }));
      list.prepend(card);
    }
    $(".reason", card).textContent = (h.reason || "handoff").replaceAll("_", " ");
    $(".caller-number", card).replaceChildren("Caller: ", phone(h.caller));
    $(".summary", card).textContent = h.summary || "";
    const button = $("button.claim", card);
    const claimed = Boolean(h.claim);
    card.dataset.claimed = String(claimed);
    button.hidden = claimed;
    button.disabled = !h.id;
    if (claimed) {
      const by = h.claim.claimed_by || {};
      const name = state.me && by.user_id === state.me.id ? "you" : by.name || `user ${by.user_id}`;
      $(".claim-state", card).textContent = `Claimed by ${name} at ${when(h.claim.claimed_at, "time")}`;
    } else {
      $(".claim-state", card).textContent = h.id ? "" : "Finding the handoff…";
    }
    markEmpty(list);
  }

  async function resolveHandoffIds(tries) {
    try {
      const board = await getJson("/api/console/handoffs?limit=50");
      for (const item of board) {
        const h = state.handoffs.get(item.call_sid);
        if (h && !h.id) {
          h.id = item.id;
          h.claim = h.claim || item.claim;
          renderHandoff(h);
        }
      }
    } catch (err) {
      if (err instanceof AuthError) return;
    }
    const pending = [...state.handoffs.values()].some((h) => !h.id);
    if (pending && tries > 1) setTimeout(() => resolveHandoffIds(tries - 1), 1000);
  }

  async function claim(sid) {
    const h = state.handoffs.get(sid);
    if (!h || !h.id) return;
    const card = $(`[data-handoff-call="${CSS.escape(sid)}"]`);
    $("button.claim", card).disabled = true;
    try {
      const res = await api(`/api/handoffs/${h.id}/claim`, { method: "POST" });
      if (res.ok || res.status === 409) {
        const body = await res.json();
        h.claim = res.ok ? body : body.claim;
        if (!res.ok) toast(body.detail);
      } else {
        toast(await problem(res));
      }
    } catch (err) {
      if (err instanceof AuthError) return;
      toast("Could not claim: network error");
    }
    renderHandoff(h);
  }

  async function loadLive() {
    const dayAgo = Date.now() - 24 * 3600 * 1000;
    const board = await getJson("/api/console/handoffs?limit=20");
    for (const item of board) {
      if (!item.claim && Date.parse(item.requested_at) > dayAgo && item.call_sid) showHandoff(item);
    }
    markEmpty($("#handoffs"));
    const page = await getJson("/api/calls?limit=20");
    const recent = Date.now() - 2 * 3600 * 1000; // older "in progress" rows never ended cleanly
    for (const c of page.items) {
      const open = c.status === "in_progress" || c.status === "ringing";
      if (open && Date.parse(c.started_at) > recent && !state.calls.has(c.call_sid)) {
        const call = liveCall(c.call_sid);
        call.from = c.from;
        call.joined = true;
        renderCall(call);
      }
    }
    markEmpty($("#live-calls"));
    markEmpty($("#activity"));
  }

  function reset() {
    state.calls.clear();
    state.handoffs.clear();
  }

  VA.live = { dispatch, loadLive, reset };
})();
