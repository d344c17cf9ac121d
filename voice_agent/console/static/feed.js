// The live feed: GET /api/events read with fetch() (the token goes in a header, never in a
// URL), parsed as Server-Sent Events. Reconnects at once when the server ends the stream in
// good order (`: reconnect`), else after 3 s, doubling up to a minute while it keeps failing.
"use strict";

(() => {
  const VA = window.VA;
  const { $, state } = VA;
  const RETRY_MS = 3000;
  const MAX_RETRY_MS = 60000;

  function setFeed(stateName, label) {
    const node = $("#feed-status");
    node.dataset.state = stateName;
    node.textContent = label;
  }

  async function follow() {
    let first = true;
    let retryMs = RETRY_MS;
    while (state.token) {
      const abort = new AbortController();
      state.feed = abort;
      let planned = false;
      const opened = Date.now();
      try {
        const res = await fetch("/api/events", {
          headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: abort.signal,
        });
        if (res.status === 401) {
          VA.signOut("Your token is no longer accepted. Sign in again.");
          return;
        }
        if (!res.ok || !res.body) throw new Error(`live feed: ${res.status}`);
        setFeed("live", "live");
        if (!first) await VA.refresh(); // what happened while the feed was away
        first = false;
        planned = await readEvents(res.body);
      } catch {
        // reconnect below, unless we were signed out
      }
      if (abort.signal.aborted || !state.token) return;
      setFeed("retry", "reconnecting…");
      if (planned) continue;
      retryMs = Date.now() - opened > 30000 ? RETRY_MS : Math.min(retryMs * 2, MAX_RETRY_MS);
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }

  // Dispatches each event; true if the stream ended with the server's `: reconnect`.
  async function readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let last = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return last === ": reconnect";
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        last = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = parseFrame(last);
        if (event) VA.live.dispatch(event);
      }
    }
  }

  function parseFrame(frame) {
    let type = "message";
    const data = [];
    for (const line of frame.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { type, body: JSON.parse(data.join("\n")) };
    } catch {
      return null;
    }
  }

  Object.assign(VA, { follow, setFeed });
})();
