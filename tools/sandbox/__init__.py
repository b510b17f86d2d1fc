"""The JavaScript sandbox behind `run_code`: QuickJS in prestarted, fenced-in worker processes.

`pool` runs code and keeps the workers, `worker` is the process entry (it imports nothing from
Vero), `fetch` serves the code's `api.fetch` through the URL guard. docs/tools.md ("run_code")
says what a run may do and what was measured.
"""
