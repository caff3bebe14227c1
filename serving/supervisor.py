"""Keep a `tritonserver` serving: restart it when it dies or hangs, and make repository changes live without a restart.

A server that stays alive but stops answering (stopped, deadlocked) is found by a liveness watchdog,
killed and restarted like a dead one. Restarts back off exponentially and stop after `max_restarts`
within `window_s` (a crash loop is reported, not hidden); each is logged with its cause. With
explicit model control the supervisor watches the repository (each model's config and every file of its version
folders, serving.model_files) and asks Triton (HTTP repository API) to load a model whose folder changed: Triton
keeps serving the loaded versions until the new ones are ready, so a deploy or a rollback goes live with no failed
request, and a file moved away under a served version is named with what serves now. A change a command loads
over the URL (`deploy --url`), or old version folders not served removed, is not loaded again (serving.url_loads).
Under poll model control Triton reloads by itself; each reload it fails is named once from its log
(serving.poll_loads). A restart that leaves a model out under strict readiness says "back … but not ready", never
"ready again"; one back unready while a load runs names it, and says when it is ready (serving.restart_readiness).
Each model loads in its own thread, so a model with a slow `initialize` holds up no other model's deploy.

A restart never lets one broken model folder take the healthy models down: a folder Triton cannot serve
(no config.pbtxt, no version) is left out of the models asked for, a model that fails to load is set
aside, and each is named in a warning line; only the first start refuses them (see `start`). A config whose inputs
or outputs are not its model's (edited by hand) counts as such a folder, and a change to one is not loaded live; nor is
a hand edit that changes the served interface as `deploy` refuses to (a lower max_batch_size). A config.pbtxt removed
alone, its version folders still there, leaves the model serving, said once (serving.config_gone); a model folder
removed is unloaded.

A model instance whose process dies (a Python backend stub killed by kill -9 or the out-of-memory killer) is
named in one line and, under explicit model control, that model alone is unloaded and loaded again through the
repository API (the tritonserver and the other models keep serving): Triton itself keeps such a model READY while
every request to it fails. A reload counts once the model runs in new processes (serving.instance_recovery); one
that fails unloads the model, so it reads as not ready rather than failing. A stopped one (SIGSTOP) is named.
A load Triton refuses for its config names Triton's reason, read from its log (serving.poll_loads). A model started
or loaded live with a default_queue_policy (a hand edit too) gets deploy's warning that Triton 2.51 stalls on it
(serving.queue_policy_stall), once per load. The models left out, each with serve's reason, are kept in `refused`
and handed to `on_refused` at each change, for serve's endpoint record (serving.endpoints.refused_reason).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from quantserve.errors import QuantserveError
from serving.config_check import config_mismatch, edited_interface_change, readable_config
from serving.config_gone import ConfigsGone
from serving.control import ControlClient
from serving.instance_recovery import InstanceRecovery, death_line
from serving.loads_in_flight import abandoned_line, loads_still_running
from serving.model_files import ModelPrint, files_changed, model_fingerprints
from serving.model_states import crash_suspect, load_failed_words, ready_versions_now
from serving.poll_loads import PollLoad, PollLoadWatch, log_size, say_news, with_poll_reason
from serving.queue_policy_stall import served_queue_policy_warning
from serving.repository import prepare_repository
from serving.restart_readiness import RestartReadiness, options_skipping, skipped_reasons
from serving.restarts import LivenessWatchdog, RestartPolicy, restart_interface_changes, served_changes
from serving.served_files import replaced_model_files
from serving.server import TritonServer
from serving.server_options import ServerOptions
from serving.url_loads import sort_changes
from serving.version_folders import unreadable_versions_because

TLS_CHECK_S = 60.0  # how often a serving supervisor looks at its TLS certificate's dates


class Supervisor:
    """Runs one `TritonServer` until `stop()`; `ready` is False from a crash or hang until the new server is ready."""

    def __init__(
        self,
        options: ServerOptions,
        policy: RestartPolicy = RestartPolicy(),
        poll_s: float = 0.5,
        log: Callable[[str], None] = print,
        watchdog: LivenessWatchdog | None = None,
    ) -> None:
        self.options = options
        self.policy = policy
        self.watchdog = watchdog or LivenessWatchdog()
        self.poll_s = poll_s
        self.log = log
        self.server = TritonServer(options, log=log)  # says so when it serves the repository through a link
        self.restarts: list[float] = []  # monotonic times of restarts
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._prints: dict[str, ModelPrint] = {}
        self._down_cause: str | None = None  # set while a restart attempt has failed
        self._repo_unreadable = False  # said once, not every poll
        self._instances = InstanceRecovery(log)  # learnt from by load threads too
        self._loading: dict[str, threading.Thread] = {}  # model → the thread of its latest load
        self._reloading: str | None = None  # a dead instance's model reloaded by `run` itself, until it returns
        self._poll_loads = PollLoadWatch()  # poll model control: Triton's own reloads, read from its log
        self._served: dict[str, list[str]] = {}  # each model's READY versions, as last known (`served_changes`)
        self._configs: dict[str, dict[str, Any]] = {}  # each model's config as last loaded (`_load`)
        self._configs_gone = ConfigsGone()  # served models whose config.pbtxt alone is gone, said once
        self._tls_said: str | None = None  # the certificate's state last warned of (`_check_certificate`)
        self._tls_checked = -math.inf  # monotonic time of the last look at the certificate
        self.refused: dict[str, str] = {}  # models left out → why (this start's, and loads refused since)
        self.on_refused: Callable[[dict[str, str]], None] | None = None  # told each time a model is judged
        self._refused_lock = threading.Lock()  # load threads judge models at once
        self._unready = RestartReadiness(options.startup_timeout_s, log)  # a restart back unready: followed

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def watches_repository(self) -> bool:
        return self.options.model_control == "explicit"

    def start(self, first: bool = True) -> None:
        """Start the server and wait until it is ready.

        The `first` start fails loudly, naming every model folder or model that cannot be served, and is never
        retried: the operator is there and nothing serves yet. A restart serves what it can and names the rest, and
        so does a first start where the options allow failed models (`serve --allow-failed-models`).
        """
        strict = first and not self.options.allow_failed_models
        watch = self.watches_repository and self.options.repo.is_dir()  # else start() names the missing folder
        repo, every = self.options.repo, not self.watches_repository
        skipped = prepare_repository(repo, strict=strict, loads_every_folder=every) if repo.is_dir() else {}
        self._prints = model_fingerprints(self.options.repo) if watch else {}
        self._configs_gone.clear()
        self.server.options = options_skipping(self.options, skipped, self.watches_repository)
        self.server.start(strict=strict)
        grpc, http, metrics = self.server.ports.values()  # ports chosen again at start when one was taken
        self.options = replace(self.options, grpc_port=grpc, http_port=http, metrics_port=metrics)
        self._poll_loads.begin(self.server.log_path if self.options.model_control == "poll" else None)
        refused = {**self.server.not_loaded, **skipped_reasons(self.options.repo, skipped)}
        for name, reason in refused.items():
            self.log(f"warning: model '{name}' not loaded: {reason}; the other models serve")
        self._set_refused(lambda _before: refused)
        self._served = self.server.loaded_models()
        self._configs = {name: c for name in self._served if (c := readable_config(self.options.repo / name))}
        for name in sorted(self._served):
            self._warn_queue_policy(name)
        self.watchdog.reset(time.monotonic())
        self._instances.learn(self.server.pid)
        self._tls_said = None  # a start serves the file as it is now: said again where it still warrants a word
        self._check_certificate()
        self._ready.set()

    def _set_refused(self, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
        """Keep the models left out (`change` of those before) and tell `on_refused`: told at each judgement, a same
        reason again included (a client takes a refusal older than the model folder's last change as a load still to
        come)."""
        with self._refused_lock:
            self.refused = change(self.refused)
            if self.on_refused is not None:
                self.on_refused(self.refused)

    def _check_certificate(self) -> None:
        """Warn once per start, and once more where it changes, that the TLS certificate expires soon or has expired
        (`ServerTls.expiry_note`); looked at every TLS_CHECK_S while serving."""
        self._tls_checked = time.monotonic()
        note = self.options.tls.expiry_note() if self.options.tls is not None else None
        if note is not None and note[0] != self._tls_said:
            self.log(f"warning: {note[1]}")
        self._tls_said = note[0] if note else None

    def stop(self) -> None:
        """Stop the server; loads in flight get a bounded wait (serving.loads_in_flight), then are abandoned: the
        server is killed with them, said in one line, rather than waited on for its whole stop timeout."""
        self._stop.set()
        self._ready.clear()
        pid, abandoned = self.server.pid, [self._reloading] if self._reloading else []
        try:
            abandoned += loads_still_running(self._loading) if self.server.is_running() else []
        finally:
            self.server.stop(kill=bool(abandoned))
        if abandoned:
            self.log(abandoned_line(sorted(set(abandoned)), pid))

    def run(self) -> None:
        """Watch until `stop()`: restart a dead or hung server, reload changed models; raise past the restart cap."""
        while not self._stop.wait(self.poll_s):
            ended = self.server.exit_cause()
            cause = self._down_cause or (ended and ended + self._instances.stopped_lately())
            if cause is not None:
                self._restart(cause)
            elif self._is_hung():
                hang_s = self.watchdog.hang_s
                self._restart(f"stopped answering (no reply to /v2/health/live for {hang_s:g} s)", kill=True)
            else:
                if self.watches_repository:
                    self.reload_changed(wait=False)
                self.say_poll_loads()
                self._unready.follow_up(self.server.control(), self.server.pid, time.monotonic())
                self.recover_dead_instances()
                if time.monotonic() - self._tls_checked >= TLS_CHECK_S:
                    self._check_certificate()

    def _is_hung(self) -> bool:
        """Ask the liveness endpoint when a check is due; True once it has gone unanswered for the watchdog's hang_s."""
        asked_at = time.monotonic()
        if not self.watchdog.due(asked_at):
            return False
        live = self.server.control(timeout_s=self.watchdog.timeout_s).is_live()
        return self.watchdog.record(asked_at, live, time.monotonic())

    def _restart(self, cause: str, kill: bool = False) -> None:
        """Stop the server (`kill`: SIGKILL at once, it is hung) and start it again after the policy's backoff."""
        self._ready.clear()
        before, configs, now = self._served, self._configs, time.monotonic()
        recent = [t for t in self.restarts if now - t < self.policy.window_s]
        if len(recent) >= self.policy.max_restarts:
            self.server.stop(kill=kill)
            raise QuantserveError(
                f"tritonserver {cause}; gave up after {len(recent)} restarts within {self.policy.window_s:.0f} s "
                f"(log: {self.server.log_path})"
            )
        wait = self.policy.backoff_s(len(recent))
        self.log(
            f"tritonserver {cause}; not ready; restart {len(recent) + 1}/{self.policy.max_restarts} in {wait:.1f} s"
        )
        self.server.stop(kill=kill)  # reaps it, kills any stub left in its process group, removes their shm
        if self._stop.wait(wait):
            return
        self.restarts.append(time.monotonic())
        started = time.monotonic()
        try:
            self.start(first=False)
        except QuantserveError as exc:
            self.server.stop()
            self._down_cause = f"did not come back ({str(exc).splitlines()[0]}{crash_suspect(str(exc))})"
            self.log(f"restart failed: {self._down_cause}")
            return
        self._down_cause = None
        self._unready.back(self.server.control(), self.server.pid, started, time.monotonic(), self.server.not_loaded)
        for line in served_changes(before, self._served, self.options.model_control):
            self.log(line)
        for line in restart_interface_changes(configs, self._configs) if self.watches_repository else []:
            self.log(line)

    def reload_changed(self, wait: bool = True) -> list[str]:
        """Ask Triton to load every model whose folder changed since the last look; returns their names.

        Each load runs in its own thread, since Triton loads different models at once: one after another, a model
        with a 40 s initialize held an unrelated deploy back for 42 s. A model changed again while its load runs is
        loaded again once that load ends. `wait`: return only when the loads begun here are done.
        """
        current = self._read_fingerprints()
        if current is None:
            return []
        busy = {name for name, thread in self._loading.items() if thread.is_alive()}
        changed = [name for name, fp in current.items() if self._prints.get(name) != fp and name not in busy]
        removed = sorted(set(self._prints) - set(current) - busy)
        served = functools.partial(ready_versions_now, self.server.control())
        changed, waiting, loaded = sort_changes(self.options.repo, changed, self._prints, current, served)
        busy |= set(waiting)  # a command loads it over the URL now: looked at again once that load is done
        for name in loaded:
            self._loaded_elsewhere(name)
        for name in changed:
            self._begin_load(name, files_changed(self._prints.get(name), current[name]))
        control = self._long_control()
        self._configs_gone.back(current)
        keeps = functools.partial(self._configs_gone.keeps_serving, self.options.repo, control=control, log=self.log)
        gone = [name for name in removed if not keeps(name)]
        if gone and set(gone) & set(self.refused):
            self._set_refused(lambda before: {n: r for n, r in before.items() if n not in gone})
        for name in gone:
            try:
                control.unload(name)
                self.log(f"model '{name}' removed from the repository: unloaded")
            except QuantserveError as exc:
                self.log(f"model '{name}' unload failed: {exc}")
        # A model still loading keeps the fingerprint it was loaded for, so a later change to it is seen afterwards;
        # one whose config alone is gone keeps the one it serves, so its config put back as it was is no change.
        kept = {name: self._prints[name] for name in busy | (set(removed) - set(gone)) if name in self._prints}
        self._prints = {**{name: fp for name, fp in current.items() if name not in busy}, **kept}
        if gone:
            self.watchdog.reset(time.monotonic())
        if wait:
            for name in changed:
                self._loading[name].join()
        return changed

    def _loaded_elsewhere(self, name: str) -> None:
        """A change already loaded (`serving.url_loads`): said where it changed the versions served, as a load is."""
        live = [str(v) for v in ready_versions_now(self.server.control(), name)]
        if live and live != self._served.get(name):
            self._served = {**self._served, name: live}
            self._configs = (
                {**self._configs, name: c} if (c := readable_config(self.options.repo / name)) else self._configs
            )
            self._set_refused(lambda before: {n: r for n, r in before.items() if n != name})
            self.log(f"model '{name}' loaded over its URL: versions {[int(v) for v in live]} live")
            self._warn_queue_policy(name)

    def _read_fingerprints(self) -> dict[str, ModelPrint] | None:
        try:
            current = model_fingerprints(self.options.repo)
        except OSError as exc:  # the repository moved or is being replaced: keep serving what is loaded
            if not self._repo_unreadable:
                self.log(f"repository {self.options.repo} unreadable ({exc.strerror}); loaded models keep serving")
            self._repo_unreadable = True
            return None
        if self._repo_unreadable:
            self.log(f"repository {self.options.repo} readable again; changes made to it meanwhile are loaded now")
        self._repo_unreadable = False
        return current

    def _long_control(self) -> ControlClient:
        """A control client whose calls may last as long as a model load may (a slow initialize)."""
        return self.server.control(timeout_s=max(60.0, self.options.startup_timeout_s))

    def _begin_load(self, name: str, change: str = "") -> None:
        args = (name, self._long_control(), self.server.pid, change)
        self._loading[name] = threading.Thread(target=self._load, args=args, name=f"load {name}", daemon=True)
        self._loading[name].start()

    def _load(self, name: str, control: ControlClient, server_pid: int | None, change: str = "") -> None:
        """Load `name` and say how it went, unless the server restarted meanwhile (its start loaded the model).

        A config whose inputs or outputs are not those of a version's model is not loaded (Triton would load it, and
        every request would fail): the versions served before keep serving, and the line says what differs. `change`:
        how a served version's files changed on disk (a file moved away or replaced in place), said first.
        """
        served = ready_versions_now(control, name)
        # a version folder Triton cannot read (too big a number) would abort the server: not loaded, named instead
        model_dir, config = self.options.repo / name, readable_config(self.options.repo / name)
        problem = unreadable_versions_because(model_dir) or config_mismatch(model_dir)
        problem = problem or (edited_interface_change(model_dir, self._configs.get(name)) if served else None)
        loaded = False
        if problem:
            said = f"not reloaded, versions {served} keep serving" if served else "not loaded"
            outcome = f"{said}: {self.options.repo / name} {problem}"
        else:
            logged = log_size(self.server.log_path)
            try:
                control.load(name)
                self._instances.learn(server_pid)  # its new instances, before anyone hears it is live
                live = control.ready_versions(name)
                outcome = f"{'reloaded' if served else 'loaded'}: versions {live} live"
                self._served = {**self._served, name: [str(v) for v in live]}
                self._configs = {**self._configs, name: config} if config else self._configs
                loaded = True
            except QuantserveError as exc:
                reason = with_poll_reason(str(exc), self.server.log_path, logged, name)
                outcome = load_failed_words(ready_versions_now(control, name), reason, change)
        if self.server.pid == server_pid:
            left_out = {name: outcome} if not loaded and not ready_versions_now(control, name) else {}
            self._set_refused(lambda before: {**{n: r for n, r in before.items() if n != name}, **left_out})
            self.log(f"model '{name}' {change + ': ' if change else ''}{outcome}")
            if loaded:
                self._warn_queue_policy(name)

    def _warn_queue_policy(self, name: str) -> None:
        """Say, at each load (a start, a change loaded: never every poll), that a model's config carries a queue
        policy, which stalls Triton 2.51's batcher (serving.queue_policy_stall): a policy edited in by hand was
        reloaded with no word, and deploy's warning reaches only the terminal that deployed. So does each served
        version whose model file is not the one deployed (`serving.served_files`)."""
        warning = served_queue_policy_warning(self.options.repo / name)
        if warning:
            self.log(warning)
        for line in replaced_model_files(self.options.repo / name):  # and a model file not the one deployed
            self.log(line)

    def say_poll_loads(self) -> list[PollLoad]:
        """Under poll model control, name each reload Triton failed by itself once (serving.poll_loads.say_news)."""
        return say_news(self._poll_loads.news(), self.server.control(), self.log)

    def recover_dead_instances(self) -> list[str]:
        """Name each model instance whose process died or stopped, and reload a dead one's model (explicit model
        control only: the other modes cannot load one model); returns the models reloaded or tried."""
        dead = self._instances.look(self.server.pid)
        for instance, how in dead:
            self.log(death_line(instance, how, self.options.model_control))
        models = sorted({instance.model for instance, _ in dead}) if self.watches_repository else []
        for model in models:
            self._reloading = model  # left set where a stop cuts the reload: the stop abandons it
            stuck = self._instances.reload(model, self._long_control(), self.server.pid)
            self._reloading = None
            if stuck:  # only a restart clears a load Triton will never finish
                self._restart(stuck, kill=True)
                return models
        if models:
            self.watchdog.reset(time.monotonic())
        return models
