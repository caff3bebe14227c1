"""loadtest/: Locust gRPC users, the evaluator and reports.

Python API (the CLI's `loadtest`, `evaluate` and `report` call the same functions):
- `loadtest.harness.run_pattern(LoadSettings, out_dir, server_pid=None) -> LoadRun` — every measured step of
  a load pattern (`loadtest.load_pattern`: `ClosedLoop(users)`, `OpenLoop(rate, arrivals)`, `Sweep`; the settings
  in `loadtest.load_settings`);
  `run_load(url, model, data, users, duration_s, out_dir, …) -> LoadResult` — one closed-loop step. Ctrl-C or
  SIGTERM saves what was measured, marked, and raises `loadtest.interruption.RunInterrupted` (a KeyboardInterrupt).
- `loadtest.evaluator.evaluate_accuracy(url, models, reference, data, …) -> AccuracyReport`.
- `loadtest.report.render(results_dir) -> (report.md, report.html)`.
The locustfiles (`locustfile.py`, `locustfile_open_loop.py`) import locust, which monkey-patches
the interpreter with gevent: they run only in Locust's own processes.
"""
