"""The sandbox's worker process: runs model-written JavaScript in QuickJS, and nothing else.

This file is the entry of a separate, prestarted process (`tools.sandbox.pool` starts it with
`python -I` by path, with an empty environment and no inherited file descriptors), so a bug in
QuickJS gives an attacker this process, not the server. Before it reads its first job it fences
itself in, each layer on its own:

- QuickJS without its `std`/`os` modules: no files, no processes, no sockets in the language;
  the only way out is `api.fetch`, which this process cannot serve itself: it asks the parent
  over its stdout pipe and the parent does the guarded request.
- a new, empty network namespace when it may make one (root, or unprivileged user namespaces),
  and the user `nobody` when it runs as root;
- resource limits: address space, CPU seconds over its lifetime, no new file descriptors (it
  has only stdin, stdout and stderr), no file writes, no core dumps, no child processes;
- a seccomp filter (when libseccomp is there) refusing the system calls an escape would need:
  opening files, sockets, exec, fork/clone, ptrace, signals to other processes.

Protocol: frames of a 4-byte big-endian length and a JSON object, on stdin (jobs, fetch
answers) and stdout (ready, log lines, fetch requests, the result). The parent keeps the wall
clock and kills this process when a run overruns; the QuickJS limits here are backstops.

It imports nothing from Vero (nor Django): its start must be fast and its surface small.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import struct
import sys
import time
from typing import Any

import quickjs

try:  # loaded now: once the worker is fenced in it can open no file, so no library either
    import pyseccomp
except Exception:  # libseccomp is not on every machine; the other layers stand without it
    pyseccomp = None

_HEADER = struct.Struct(">I")
_MB = 1024 * 1024

# The JavaScript every run starts with: console capture, api.fetch, and the settling of the
# code's value. It runs in the run's own fresh context, before the model's code.
_PRELUDE = r"""
(() => {
  const limit = __vero_limits.output_chars;
  const hostLog = __vero_log;
  const hostFetch = __vero_fetch;
  // Kept before the code runs: code that replaces JSON's functions breaks its own output only.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const state = { used: 0, truncated: false, settled: false, ok: true, value: undefined,
                  error: null, fetches: 0 };
  const describeValue = (value) => {
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    if (typeof value === "bigint") return value.toString() + "n";
    if (typeof value === "symbol") return value.toString();
    if (value instanceof Error) return String(value);
    return undefined;
  };
  // JSON text of any value: BigInts, functions and symbols as strings, a cycle as
  // "[Circular]" (a value seen twice but not in its own ancestry is written twice).
  const toJson = (value) => {
    const ancestors = [];
    try {
      const text = stringify(value, function (key, item) {
        const described = describeValue(item);
        if (described !== undefined) return described;
        if (typeof item === "object" && item !== null) {
          while (ancestors.length && ancestors[ancestors.length - 1] !== this) ancestors.pop();
          if (ancestors.includes(item)) return "[Circular]";
          ancestors.push(item);
        }
        return item;
      });
      return text === undefined ? stringify(String(value)) : text;
    } catch (error) {
      return stringify(String(value));
    }
  };
  const show = (value) => {
    if (typeof value === "string") return value;
    if (value === undefined) return "undefined";
    const described = describeValue(value);
    return described !== undefined ? described : toJson(value);
  };
  const log = (level) => (...items) => {
    if (state.truncated) return;
    let line = items.map(show).join(" ");
    if (state.used + line.length > limit) {
      line = line.slice(0, Math.max(0, limit - state.used));
      state.truncated = true;
    }
    state.used += line.length;
    hostLog(level, line);
  };
  globalThis.console = Object.freeze({
    log: log("log"), info: log("info"), debug: log("debug"), warn: log("warn"),
    error: log("error"),
  });
  const headersOf = (headers) => {
    const out = {};
    if (headers === undefined || headers === null) return out;
    if (typeof headers !== "object") throw new TypeError("api.fetch: headers must be an object");
    for (const [name, value] of Object.entries(headers)) out[String(name)] = String(value);
    return out;
  };
  const fetch = (url, init) => {
    init = init || {};
    if (typeof url !== "string") throw new TypeError("api.fetch: the url must be a string");
    const body = init.body === undefined || init.body === null ? null
      : (typeof init.body === "string" ? init.body : stringify(init.body));
    const request = { url, method: String(init.method || "GET").toUpperCase(),
                      headers: headersOf(init.headers), body };
    const answer = parse(hostFetch(stringify(request)));
    if (!answer.ok) throw new Error("api.fetch: " + answer.error);
    const text = answer.body;
    return {
      ok: answer.status >= 200 && answer.status < 300, status: answer.status,
      statusText: answer.statusText, headers: answer.headers, url: answer.url, body: text,
      text: () => Promise.resolve(text),
      json: () => new Promise((resolve) => resolve(parse(text))),
    };
  };
  globalThis.api = Object.freeze({
    fetch: (url, init) => new Promise((resolve) => resolve(fetch(url, init))),
  });
  // What models write that this QuickJS (ES2020) lacks: ES2022's at/hasOwn/findLast, timers.
  const define = (target, name, value) => {
    if (!(name in target)) {
      Object.defineProperty(target, name, { value, writable: true, configurable: true });
    }
  };
  function at(index) {
    const length = this.length;
    index = Math.trunc(index) || 0;
    if (index < 0) index += length;
    return index < 0 || index >= length ? undefined : this[index];
  }
  define(Array.prototype, "at", at);
  define(String.prototype, "at", at);
  define(Object, "hasOwn", (object, key) => Object.prototype.hasOwnProperty.call(object, key));
  define(Array.prototype, "findLastIndex", function (test, self) {
    for (let i = this.length - 1; i >= 0; i--) if (test.call(self, this[i], i, this)) return i;
    return -1;
  });
  define(Array.prototype, "findLast", function (test, self) {
    const index = this.findLastIndex(test, self);
    return index < 0 ? undefined : this[index];
  });
  // Timers: the worker runs the earliest when no promise job is left, after waiting for it
  // (the wait counts against the run's time).
  const timers = [];
  let timerCount = 0;
  globalThis.setTimeout = (callback, delay, ...args) => {
    timerCount += 1;
    timers.push({ id: timerCount, at: Date.now() + Math.max(0, Number(delay) || 0), callback,
                  args });
    return timerCount;
  };
  globalThis.clearTimeout = (id) => {
    const index = timers.findIndex((timer) => timer.id === id);
    if (index >= 0) timers.splice(index, 1);
  };
  globalThis.queueMicrotask = (callback) => { Promise.resolve().then(callback); };
  // The frames of the model's code only: the sandbox's own (eval, this prelude) are cut.
  const ownFrames = (stack) => {
    const lines = String(stack || "").split("\n");
    let end = lines.findIndex((line) => line.includes("at eval (native)"));
    if (end < 0) {  // the async function body: its frame is the last of the model's
      const body = lines.findIndex((line) => line.includes("at anonymous ("));
      end = body >= 0 ? body + 1 : lines.length;
    }
    return lines.slice(0, end).join("\n").trim();
  };
  const describe = (error) => {
    if (error instanceof Error) {
      return { type: error.name || "Error", message: String(error.message),
               stack: ownFrames(error.stack) };
    }
    return { type: "Thrown", message: show(error), stack: "" };
  };
  // What the worker calls between the model's code and its report: the code cannot replace.
  const fixed = (name, value) => Object.defineProperty(
    globalThis, name, { value, writable: false, configurable: false, enumerable: false });
  const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
  // As in a script, the value of a last line that is an expression is the result: the body
  // returns it when it parses so (only parsed here, never run twice), else runs as written.
  const asyncBody = (code) => {
    const lines = code.replace(/[\s;]+$/, "").split("\n");
    const last = lines.pop();
    if (last !== undefined && last.trim() && !/^\s*(return|const|let|var)\b/.test(last)) {
      try {
        return new AsyncFunction(lines.join("\n") + "\nreturn (" + last + "\n);");
      } catch (error) {
        if (!(error instanceof SyntaxError)) throw error;
      }
    }
    return new AsyncFunction(code);
  };
  fixed("__vero_start", (code) => {
    let value;
    try {
      value = (0, eval)(code);
    } catch (error) {
      // Top-level `await` or `return`: the code is the body of an async function instead.
      if (!(error instanceof SyntaxError) || !/\bawait\b|\breturn\b/.test(code)) {
        state.settled = true; state.ok = false; state.error = describe(error);
        return;
      }
      try {
        value = asyncBody(code)();
      } catch (second) {
        state.settled = true; state.ok = false; state.error = describe(error);
        return;
      }
    }
    Promise.resolve(value).then(
      (result) => { state.settled = true; state.value = result; },
      (error) => { state.settled = true; state.ok = false; state.error = describe(error); },
    );
  });
  fixed("__vero_settled", () => state.settled);
  // -1: no timer; > 0: milliseconds until the next; 0: one ran.
  fixed("__vero_timer", () => {
    if (!timers.length) return -1;
    timers.sort((a, b) => a.at - b.at || a.id - b.id);
    const wait = timers[0].at - Date.now();
    if (wait > 0) return wait;
    const timer = timers.shift();
    try {
      if (typeof timer.callback === "function") timer.callback(...timer.args);
    } catch (error) {  // uncaught in a timer: the run fails with it
      state.settled = true; state.ok = false; state.error = describe(error);
    }
    return 0;
  });
  fixed("__vero_report", () => {
    const report = { ok: state.ok, truncated: state.truncated };
    if (state.ok) {
      let value = null;
      if (state.value !== undefined) {
        const text = toJson(state.value);
        const room = Math.max(0, limit - state.used);
        if (text.length > room) {  // cut, as text: the model reads the beginning
          value = text.slice(0, room);
          report.truncated = true;
        } else {
          value = parse(text);
        }
      }
      report.value = value;
    } else {
      report.error = state.error;
    }
    return stringify(report);
  });
})();
"""


def _write(frame: dict[str, Any]) -> None:
    data = json.dumps(frame, ensure_ascii=False).encode("utf-8", errors="replace")
    sys.stdout.buffer.write(_HEADER.pack(len(data)) + data)
    sys.stdout.buffer.flush()


def _read() -> dict[str, Any] | None:
    header = sys.stdin.buffer.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None  # the parent closed the pipe (or died): end
    (length,) = _HEADER.unpack(header)
    data = sys.stdin.buffer.read(length)
    if len(data) < length:
        return None
    frame = json.loads(data)
    return frame if isinstance(frame, dict) else None


def _isolate_network() -> str | None:
    """A new network namespace has only a loopback that is down: no route anywhere."""
    flags = os.CLONE_NEWNET if os.geteuid() == 0 else os.CLONE_NEWUSER | os.CLONE_NEWNET
    try:
        os.unshare(flags)
    except OSError:
        return None
    return "network-namespace"


def _drop_privileges() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    except OSError:
        return None
    return "user-nobody"


def _vm_size() -> int:
    with open("/proc/self/status", "rb") as status:  # bytes: no codec left to import
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_resources(*, memory_mb: int, cpu_seconds: int) -> str:
    # The heap QuickJS may use, twice (its own accounting is not the allocator's), above what
    # this interpreter already maps.
    address_space = _vm_size() + 2 * memory_mb * _MB + 64 * _MB
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    # stdin, stdout and stderr are 0, 1 and 2: no descriptor may be opened past them.
    resource.setrlimit(resource.RLIMIT_NOFILE, (3, 3))
    return "rlimits"


_DENIED_SYSCALLS = (
    "open", "openat", "openat2", "creat", "socket", "socketpair", "connect", "bind", "listen",
    "accept", "accept4", "execve", "execveat", "fork", "vfork", "clone", "clone3", "ptrace",
    "process_vm_readv", "process_vm_writev", "kill", "tkill", "unlink", "unlinkat", "rename",
    "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink",
    "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown",
    "truncate", "ftruncate", "mount", "umount2", "pivot_root", "chroot", "setns", "unshare",
    "setrlimit", "prlimit64", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "keyctl",
    "add_key", "request_key", "init_module", "finit_module", "kexec_load", "reboot",
)  # fmt: skip


def _seccomp() -> str | None:
    """Refuse (EPERM) the system calls an escape would need; best effort: libseccomp may lack."""
    if pyseccomp is None:
        return None
    try:
        rules = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
        for name in _DENIED_SYSCALLS:
            try:
                rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
            except Exception:  # noqa: S112 - a call this architecture does not have
                continue
        rules.load()
    except Exception:
        return None
    return "seccomp"


def _run(job: dict[str, Any]) -> dict[str, Any]:
    """Run one job in a fresh QuickJS context; return the report (or a crash's description)."""
    limits = {
        "output_chars": int(job["output_chars"]),
        "fetches": int(job["fetches"]),
    }
    context = quickjs.Context()
    context.set_memory_limit(int(job["memory_mb"]) * _MB)
    context.set_max_stack_size(1 * _MB)
    # No QuickJS time limit: the binding then refuses calls into Python (console, fetch). The
    # parent's wall clock stops a run (it kills this process); RLIMIT_CPU is the backstop.
    fetches = 0

    def log(level: str, line: str) -> None:
        _write({"op": "log", "level": level, "line": line})

    def fetch(request: str) -> str:
        nonlocal fetches
        fetches += 1
        if fetches > limits["fetches"]:
            return json.dumps(
                {"ok": False, "error": f"at most {limits['fetches']} fetches per run"}
            )
        _write({"op": "fetch", "request": json.loads(request)})
        answer = _read()
        if answer is None:
            raise SystemExit(0)
        return json.dumps(answer.get("answer"))

    context.add_callable("__vero_log", log)
    context.add_callable("__vero_fetch", fetch)
    context.set("__vero_limits", context.parse_json(json.dumps(limits)))
    context.eval(_PRELUDE)
    for name in ("__vero_log", "__vero_fetch", "__vero_limits"):
        context.eval(f"delete globalThis.{name}")
    try:
        context.get("__vero_start")(str(job["code"]))
        while not context.get("__vero_settled")():
            if context.execute_pending_job():
                continue
            wait = context.get("__vero_timer")()
            if wait < 0:
                break  # nothing left that could settle the code's promise
            if wait > 0:
                time.sleep(wait / 1000)
        settled = context.get("__vero_settled")()
        report: dict[str, Any] = json.loads(context.get("__vero_report")())
    except quickjs.JSException as error:
        message = str(error)
        kind = "memory_limit" if "out of memory" in message else "internal"
        if "interrupted" in message:
            kind = "time_limit"
        return {"ok": False, "error": {"type": kind, "message": message.strip()}}
    except quickjs.StackOverflow as error:
        return {"ok": False, "error": {"type": "RangeError", "message": str(error)}}
    except MemoryError:
        return {"ok": False, "error": {"type": "memory_limit", "message": "out of memory"}}
    except (ValueError, TypeError) as error:  # a report the code managed to spoil
        return {"ok": False, "error": {"type": "internal", "message": f"no report: {error}"}}
    finally:
        del context
    if not settled:
        return {
            "ok": False,
            "truncated": report.get("truncated", False),
            "error": {
                "type": "unsettled",
                "message": "The code's promise never settled (nothing left to wait for).",
            },
        }
    error_info = report.get("error") or {}
    if "out of memory" in str(error_info.get("message", "")):
        error_info["type"] = "memory_limit"
    return report


def fence(*, memory_mb: int, cpu_seconds: int) -> list[str]:
    """Put up every layer this machine allows, in order; return the names of those put up."""
    os.chdir("/")
    protections = ["quickjs-no-std-os"]
    for layer in (_isolate_network(), _drop_privileges()):
        if layer:
            protections.append(layer)
    protections.append(_limit_resources(memory_mb=memory_mb, cpu_seconds=cpu_seconds))
    layer = _seccomp()
    if layer:
        protections.append(layer)
    return protections


def main() -> None:
    settings = json.loads(sys.argv[1])
    protections = fence(
        memory_mb=int(settings["memory_mb"]), cpu_seconds=int(settings["cpu_seconds"])
    )
    _write({"op": "ready", "protections": protections, "pid": os.getpid()})
    while True:
        job = _read()
        if job is None or job.get("op") != "run":
            return
        try:
            report = _run(job)
        except MemoryError:
            report = {"ok": False, "error": {"type": "memory_limit", "message": "out of memory"}}
        except Exception as error:  # the parent retires a worker that reports "internal"
            report = {"ok": False, "error": {"type": "internal", "message": repr(error)[:500]}}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _write({"op": "done", "report": report, "cpu": usage.ru_utime + usage.ru_stime})


if __name__ == "__main__":
    main()
