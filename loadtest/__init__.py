"""loadtest/: Locust gRPC users, the evaluator and reports.

Python API (the CLI's `loadtest`, `evaluate` and `report` call the same functions):
- `loadtest.harness.run_load(url, model, data, users, duration_s, out_dir, metrics_url=None, server_pid=None,
  **options) -> LoadResult` — one measured Locust step; `run_sweep(LoadSettings, concurrencies, out_dir, …)`.
- `loadtest.evaluator.evaluate_accuracy(url, models, reference, data, …) -> AccuracyReport`.
- `loadtest.report.render(results_dir) -> (report.md, report.html)`.
The locustfiles (`locustfile.py`, `locustfile_open_loop.py`) import locust, which monkey-patches
the interpreter with gevent: they run only in Locust's own processes.
"""
