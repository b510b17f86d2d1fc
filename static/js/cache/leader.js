// Which tab is which: this tab's id, the one tab that leads, and the channel between tabs.
//
// Only the leader holds the socket and syncs; the others repaint from the cache when it says
// so. navigator.locks gives the lead to exactly one tab and hands it on the moment that tab
// closes. Where it is missing, a lease in localStorage stands in: the leader renews it every
// 3 s, and a tab takes over a lease nobody renewed (or one its leader gave up on leaving).
const TAB_KEY = "vero-tab";
const LEADER_LOCK = "vero-cache-leader";
const LEASE_KEY = "vero-cache-leader";
const LEASE_RENEW_MS = 3000;
const LEASE_CHECK_MS = 1000;
// Two renewals may be late (a busy or throttled tab) before another tab takes over; with the
// followers' check every second, a vanished leader is replaced within 10 s.
const LEASE_MS = 8000;
const LEASE_CONFIRM_MS = 100;
const CHANNEL_NAME = "vero-cache";

function randomId() {
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const raw = crypto.getRandomValues(new Uint8Array(16));
  return [...raw].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function tabIdLoad() {
  let id = null;
  try { id = sessionStorage.getItem(TAB_KEY); } catch (error) { /* storage blocked */ }
  return id || tabIdStore(randomId());
}

function tabIdStore(id) {
  try { sessionStorage.setItem(TAB_KEY, id); } catch (error) { /* storage blocked */ }
  return id;
}

// Random per tab and kept across reloads (an echo of a request sent before a reload is still
// this tab's). Read it through tabIdGet(): a duplicated tab may replace it.
let tabId = tabIdLoad();

export function tabIdGet() {
  return tabId;
}

// A duplicated tab starts with a copy of its original's sessionStorage, so with its id: each
// tab holds a lock named after its id for its whole life, and a tab that finds its id taken
// takes a new one.
function tabIdClaim() {
  if (!navigator.locks) return;
  navigator.locks.request(`vero-tab:${tabId}`, { ifAvailable: true }, (lock) => {
    if (lock) return new Promise(() => {});
    tabId = tabIdStore(randomId());
    tabIdClaim();
    return undefined;
  });
}
tabIdClaim();

export const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL_NAME) : null;

// Calls onLead() once this tab leads, and onResign() if a lease-led tab loses the lead.
export function leadershipStart({ onLead, onResign = () => {} }) {
  if (navigator.locks) {
    navigator.locks.request(LEADER_LOCK, () => {
      onLead();
      return new Promise(() => {}); // held until the tab closes
    });
    return;
  }
  leaseStart(onLead, onResign);
}

function leaseRead() {
  try { return JSON.parse(localStorage.getItem(LEASE_KEY) || "null"); } catch (error) { return null; }
}

function leaseWrite() {
  try {
    localStorage.setItem(LEASE_KEY, JSON.stringify({ tab: tabId, until: Date.now() + LEASE_MS }));
  } catch (error) { /* storage blocked: nobody leads through a lease */ }
}

function leaseFree(lease) {
  return !lease || lease.tab === tabId || lease.until < Date.now();
}

function leaseStart(onLead, onResign) {
  let leading = false;
  let renewedAt = 0;
  const check = () => {
    const lease = leaseRead();
    if (leading && lease && lease.tab !== tabId) {
      leading = false; // taken over while this tab was asleep
      onResign();
    }
    if (leading) {
      if (Date.now() - renewedAt >= LEASE_RENEW_MS) { leaseWrite(); renewedAt = Date.now(); }
      return;
    }
    if (!leaseFree(lease)) return;
    leaseWrite();
    // Two tabs may have written at once: the one whose write stayed leads.
    setTimeout(() => {
      if (leading || leaseRead()?.tab !== tabId) return;
      leading = true;
      renewedAt = Date.now();
      onLead();
    }, LEASE_CONFIRM_MS);
  };
  setInterval(check, LEASE_CHECK_MS);
  check();
  window.addEventListener("pagehide", () => {
    if (leading && leaseRead()?.tab === tabId) localStorage.removeItem(LEASE_KEY);
  });
  // The leader left: take over now rather than at the next check.
  window.addEventListener("storage", (event) => {
    if (event.key === LEASE_KEY && event.newValue === null) check();
  });
}
