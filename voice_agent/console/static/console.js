// The console's start: sign-in (the token is kept in this tab's sessionStorage and sent as a
// bearer header only), sign-out, tabs, and the forms.
"use strict";

(() => {
  const VA = window.VA;
  const { $, fill, show, badge, state, problem, quietly, history } = VA;
  const TOKEN_KEY = "va.console.token";

  function refresh() {
    const loads = [VA.live.loadLive(), history.loadCalls(), history.loadBookings(), history.loadMessages()];
    return Promise.all(loads.map(quietly));
  }

  // ---- sign-in -------------------------------------------------------------------------

  async function signIn(token) {
    const res = await fetch("/api/console/context", {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      cache: "no-store",
    });
    if (res.status === 401) return "That token was not accepted.";
    if (!res.ok) return `Sign-in failed: ${await problem(res)}`;
    const context = await res.json();
    state.token = token;
    state.me = context.user;
    state.tz = context.business.timezone;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#business-name").textContent = context.business.name;
    $("#who").textContent = `Signed in as ${context.user.name || `user ${context.user.id}`} (${context.user.role})`;
    show($("#sign-in"), false);
    show($("#app"), true);
    show($("#sign-out"), true);
    await refresh();
    VA.follow();
    return null;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = state.me = null;
    if (state.feed) state.feed.abort();
    VA.live.reset();
    for (const id of ["#handoffs", "#live-calls", "#activity", "#call-list", "#booking-list", "#message-list"]) {
      fill($(id), []);
    }
    VA.history.closeDetail();
    VA.setFeed("off", "offline");
    show($("#app"), false);
    show($("#sign-out"), false);
    show($("#sign-in"), true);
    $("#business-name").textContent = "Dispatcher console";
    const error = $("#sign-in-error");
    error.textContent = message || "";
    show(error, Boolean(message));
  }

  // ---- tabs and start-up ---------------------------------------------------------------

  function selectTab(name) {
    for (const tab of document.querySelectorAll("[role=tab]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
      show($(`#tab-${tab.dataset.tab}`), tab.dataset.tab === name);
    }
    if (name === "live") badge("#badge-live", 0);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const tab of document.querySelectorAll("[role=tab]")) {
      tab.addEventListener("click", () => selectTab(tab.dataset.tab));
    }
    $("#sign-in-form").addEventListener("submit", async (event) => {
      event.preventDefault(); // never submitted: the token goes nowhere but the API headers
      const input = $("#token");
      const token = input.value.trim();
      const error = $("#sign-in-error");
      show(error, false);
      const failure = await signIn(token).catch((err) => `Sign-in failed: ${err.message || err}`);
      if (failure) {
        error.textContent = failure;
        show(error, true);
      } else {
        input.value = "";
      }
    });
    $("#sign-out").addEventListener("click", () => signOut());
    $("#call-filters").addEventListener("submit", (event) => {
      event.preventDefault();
      history.closeDetail();
      quietly(history.loadCalls());
    });
    $("#calls-more").addEventListener("click", () => quietly(history.loadCalls(true)));
    $("#booking-filters").addEventListener("change", () => quietly(history.loadBookings()));
    $("#booking-filters").addEventListener("submit", (event) => event.preventDefault());
    $("#message-filters").addEventListener("change", () => quietly(history.loadMessages()));
    $("#message-filters").addEventListener("submit", (event) => event.preventDefault());

    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (!saved) {
      signOut();
      return;
    }
    signIn(saved).then((failure) => failure && signOut(failure))
      .catch(() => signOut("Could not reach the server."));
  });

  Object.assign(VA, { signIn, signOut, refresh });
})();
