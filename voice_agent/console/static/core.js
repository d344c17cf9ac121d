// The console's shared state, the API client and formatting. The console's scripts share
// one namespace, VA, and load in order (core, dom, feed, live, history, console).
"use strict";

(() => {
  const VA = (window.VA = window.VA || {});

  const state = {
    token: null,
    me: null,
    tz: undefined,
    feed: null, // AbortController of the live feed
    calls: new Map(), // call SID -> live call {sid, from, lines, outcome, ended}
    handoffs: new Map(), // call SID -> handoff {id, call_sid, caller, reason, summary, claim}
    callsOffset: 0,
    recordingUrl: null,
  };

  class AuthError extends Error {}

  // ---- formatting ----------------------------------------------------------------------

  const STYLES = {
    full: { dateStyle: "medium", timeStyle: "short" },
    time: { timeStyle: "short" },
    day: { weekday: "long", month: "short", day: "numeric" },
  };

  function when(iso, style = "full") {
    if (!iso) return "";
    try {
      return new Intl.DateTimeFormat(undefined, { ...STYLES[style], timeZone: state.tz }).format(
        new Date(iso),
      );
    } catch {
      return iso;
    }
  }

  function businessDate(date) {
    // YYYY-MM-DD as the business's calendar has it
    return new Intl.DateTimeFormat("en-CA", {
      timeZone: state.tz, year: "numeric", month: "2-digit", day: "2-digit",
    }).format(date);
  }

  function clock(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  const OUTCOMES = {
    booked: "Booked",
    handed_off: "Handed off",
    message_taken: "Message taken",
    answered: "Answered",
    abandoned: "Abandoned",
  };
  const outcome = (value) => OUTCOMES[value] || value || "in progress";

  // ---- API -----------------------------------------------------------------------------

  async function api(path, options = {}) {
    if (!state.token) throw new AuthError();
    const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
    const res = await fetch(path, { ...options, headers, cache: "no-store" });
    if (res.status === 401) {
      VA.signOut("Your token is no longer accepted. Sign in again.");
      throw new AuthError();
    }
    return res;
  }

  async function problem(res) {
    try {
      const body = await res.json();
      return typeof body.detail === "string" ? body.detail : `Error ${res.status}`;
    } catch {
      return `Error ${res.status}`;
    }
  }

  async function getJson(path) {
    const res = await api(path, { headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(await problem(res));
    return res.json();
  }

  function quietly(promise) {
    return promise.catch((err) => {
      if (!(err instanceof AuthError)) VA.toast(String(err.message || err));
    });
  }

  Object.assign(VA, {
    state, AuthError, api, problem, getJson, quietly, when, businessDate, clock, outcome,
  });
})();
