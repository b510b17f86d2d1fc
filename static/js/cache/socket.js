// The leader's WebSocket to /ws/: events about this user's data, and the signal to resync.
//
// Frames (docs/realtime.md): `ready` once connected, `event` per change, `resync` when the
// server may have missed events, `pong` for our ping. A dropped socket reconnects after 1 s,
// doubling up to 30 s with jitter (never a storm of reconnects after a server restart), and
// every (re)connect ends with a sync: events missed while disconnected are never lost.
const PATH = "/ws/";
const PING_MS = 25000;
const RECONNECT_FIRST_MS = 1000;
const RECONNECT_MAX_MS = 30000;

export function reconnectDelay(failures) {
  const ceiling = Math.min(RECONNECT_FIRST_MS * 2 ** failures, RECONNECT_MAX_MS);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

function socketUrl() {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${PATH}`;
}

// onEvent(frame) for each event; onSync() when the cache must catch up (connected, resync).
// Returns {close()}.
export function socketStart({ onEvent, onSync }) {
  let socket = null;
  let failures = 0;
  let pinger = null;
  let retry = null;
  let closed = false;

  const connect = () => {
    retry = null;
    socket = new WebSocket(socketUrl());
    socket.addEventListener("message", (message) => receive(message.data));
    socket.addEventListener("close", dropped);
  };
  const receive = (data) => {
    let frame = null;
    try { frame = JSON.parse(data); } catch (error) { return; }
    if (frame.type === "ready") {
      failures = 0;
      pinger = setInterval(() => send({ type: "ping" }), PING_MS);
      onSync();
    } else if (frame.type === "resync") {
      onSync();
    } else if (frame.type === "event") {
      onEvent(frame);
    }
  };
  const send = (frame) => {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  };
  const dropped = () => {
    clearInterval(pinger);
    pinger = null;
    if (closed || retry) return;
    retry = setTimeout(connect, reconnectDelay(failures));
    failures += 1;
  };
  // Back online: no reason to wait out the backoff.
  window.addEventListener("online", () => {
    if (closed || !retry) return;
    clearTimeout(retry);
    failures = 0;
    connect();
  });
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      if (socket) socket.close();
    },
  };
}
