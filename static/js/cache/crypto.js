// The cache's key and the sealing of its records (AES-GCM, record by record).
//
// The key comes from the server (POST /api/cache/key: HKDF of the session, see docs/realtime.md)
// and is imported non-extractable: script on the page can use it but never read it out. Each
// record is sealed with a fresh 12-byte IV and its id as additional data, so a sealed value moved
// under another id no longer opens.
import { postJson } from "./sync.js";

const KEY_URL = "/api/cache/key";
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A string as its UTF-8 bytes; bytes as they are.
function bytes(value) {
  return typeof value === "string" ? encoder.encode(value) : new Uint8Array(value);
}

export function base64urlDecode(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

// The raw 32 bytes as a key only AES-GCM can use, and nobody can export.
export function keyImport(raw) {
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

// The session's key from the server. Throws a KeyRefused when the server says no (no session:
// the cache must go) and the fetch's own error when the server cannot be reached (offline).
export class KeyRefused extends Error {}

export async function keyFetch() {
  const response = await postJson(KEY_URL, {});
  if (response.status === 401 || response.status === 403) throw new KeyRefused(`key refused: ${response.status}`);
  if (!response.ok) throw new Error(`key request failed: ${response.status}`);
  const body = await response.json();
  return keyImport(base64urlDecode(body.key));
}

export async function seal(key, id, value) {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const plain = encoder.encode(JSON.stringify(value));
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(id) }, key, plain);
  return { iv, data };
}

// Throws when the key is not the one that sealed it, or the record was altered or moved.
export async function open(key, id, sealed) {
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: sealed.iv, additionalData: encoder.encode(id) }, key, sealed.data,
  );
  return JSON.parse(decoder.decode(plain));
}

// HKDF-SHA256 as the server derives the cache key: the 32 bytes, for the shared test vector.
export async function hkdfKey(ikm, salt, info) {
  const base = await crypto.subtle.importKey("raw", bytes(ikm), "HKDF", false, ["deriveBits"]);
  const derived = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: bytes(salt), info: bytes(info) }, base, 256,
  );
  return new Uint8Array(derived);
}
