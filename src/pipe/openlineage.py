"""OpenLineage events for the tasks of a run or backfill, through openlineage-python.

`observe(reporter, cp, warn)` returns the runner Reporter to use: `reporter` itself when
OpenLineage is not configured, else a wrapper that forwards every hook to it and emits, for
each task that starts, a START event and then one COMPLETE, FAIL or ABORT event (a task
interrupted by Ctrl-C, or still running when the run ends, is ABORT); and for the pipe run
itself (job: the project's name), the parent of every task's run, START when it begins and
COMPLETE, FAIL (a task failed) or ABORT (interrupted) when it ends. A task retried after a
failed attempt stays one OpenLineage run: START at its first attempt, the terminal event at
its last. Sensors and tasks that never start (skipped, upstream failed) emit nothing.

OpenLineage is on with `openlineage:` in pipe.yml (its `transport` is the client's own
config dict) or, without it, when the client's environment variables configure it
(OPENLINEAGE_URL, OPENLINEAGE_CONFIG, OPENLINEAGE__TRANSPORT__...); OPENLINEAGE_DISABLED=true
turns it off. Each event: job = namespace + model name with the SQL and job type facets;
run = one per task with a parent facet naming the pipe run, nominalTime = the task's
interval and errorMessage on FAIL; inputs = the model's upstream tables; output = the
model's table with schema, columnLineage (lineage.compute), and on COMPLETE/FAIL
outputStatistics (rows) and dataQualityAssertions (the checks and their results).

The hooks only queue what happened; a background thread builds and sends the events, so
a slow transport never holds up the scheduler. A transport that fails never fails the run:
the first failure stops the sending, and `done()` warns once, through `warn`, how many
events were not sent. This module prints nothing itself.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from . import __version__
from .errors import ConfigError, SourceLocation, UserError
from .intervals import iso

PRODUCER = f"https://pypi.org/project/pipe/{__version__}/"
_DONE = object()
FLUSH_SECONDS = 30.0  # how long done() waits for queued events to go out


def wanted(settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether a run emits OpenLineage events (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    return settings is not None or configured_by_environment(env)


def configured_by_environment(env: Mapping[str, str]) -> bool:
    """Whether the client finds a transport of its own: its environment variables, or
    the openlineage.yml it looks for in the working directory."""
    return bool(
        env.get("OPENLINEAGE_URL")
        or env.get("OPENLINEAGE_CONFIG")
        or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in env)
        or os.path.isfile("openlineage.yml")
    )


def observe(reporter, cp, warn: Callable[[str], None], models=None):
    """The Reporter for a run of `cp`: `reporter`, wrapped when OpenLineage is on.
    `models` are the models the run may build (default: all): their column lineage is
    computed once, on the first event.

    Raises a UserError (before anything runs) when pipe.yml configures OpenLineage but
    the client is not installed or refuses the transport config."""
    settings = cp.raw.config.openlineage
    if not wanted(settings):
        return reporter
    if not (settings and settings.transport) and not configured_by_environment(os.environ):
        # the client would fall back to logging events nobody sees: say so instead
        warn(
            "warning: 'openlineage' in pipe.yml has no transport and no OPENLINEAGE_URL "
            "(or other OPENLINEAGE_ variable) is set; no events are sent"
        )
        return reporter
    client = _client(settings)
    if client is None:
        warn(
            "OpenLineage is configured by environment variables but openlineage-python is "
            "not installed (pip install 'pipe[openlineage]'); no events are sent"
        )
        return reporter
    namespace = (
        settings.namespace
        if settings and settings.namespace
        else os.environ.get("OPENLINEAGE_NAMESPACE") or cp.name
    )
    return LineageReporter(reporter, _Builder(cp, namespace, models), client, warn)


def _client(settings):
    at = SourceLocation("pipe.yml")
    try:
        from openlineage.client import OpenLineageClient
    except ImportError:
        if settings is None:
            return None
        raise ConfigError(
            "'openlineage' in pipe.yml needs the openlineage-python client",
            at=at,
            hint="pip install 'pipe[openlineage]'",
        ) from None
    # the client logs; without a handler of the user's, Python would print its warnings
    # on stderr beside pipe's own single warning
    logging.getLogger("openlineage").addHandler(logging.NullHandler())
    config = None
    if settings is not None and settings.transport:
        config = {"transport": _expand(json.loads(settings.transport))}
    try:
        return OpenLineageClient(config=config)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the client's own config errors, any type
        raise ConfigError(
            f"the OpenLineage client refuses its transport config: {exc}", at=at
        ) from None


def _expand(value):
    """${VAR} in the transport config's strings, from the environment (secrets stay out
    of pipe.yml)."""
    from .adapters.base import expand_env

    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        return expand_env(value, "openlineage transport")
    return value


class LineageReporter:
    """A runner Reporter that forwards to `inner` and queues OpenLineage events."""

    def __init__(self, inner, builder: _Builder, client, warn: Callable[[str], None]):
        self.inner, self.builder, self.client, self.warn = inner, builder, client, warn
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._open: dict[str, object] = {}  # task id -> the task, between START and the end
        self._stopping = False
        self._failed = False
        self._label: str | None = None  # the run's label, once it started
        self.failure: str | None = None
        self.dropped = 0
        self.sent = 0
        self._thread = threading.Thread(target=self._send_all, name="pipe-openlineage", daemon=True)
        self._thread.start()

    # -- the Reporter hooks
    def waiting_for_lock(self, holder):
        self.inner.waiting_for_lock(holder)

    def start(self, total, skipped, label):
        self._label = label
        self._queue.put(("RUN", "START", label, _now()))
        self.inner.start(total, skipped, label)

    def skipped(self, task_ids):
        self.inner.skipped(task_ids)

    def task_started(self, task, attempt):
        with self._lock:
            first = task.kind != "sensor" and task.id not in self._open
            if first:
                self._open[task.id] = task
        if first:
            self._queue.put(("START", task, None, _now()))
        self.inner.task_started(task, attempt)

    def task_finished(self, task, result, attempt, seconds, final):
        if final:
            with self._lock:
                known = self._open.pop(task.id, None) is not None
                state = (
                    "COMPLETE"
                    if result.status == "success"
                    else ("ABORT" if self._stopping else "FAIL")
                )
            if known:
                self._queue.put((state, task, result, _now()))
        self.inner.task_finished(task, result, attempt, seconds, final)

    def task_settled(self, task, outcome):
        if outcome.status in ("failed", "upstream_failed"):
            with self._lock:
                self._failed = True
        self.inner.task_settled(task, outcome)

    def stopping(self, running):
        with self._lock:
            self._stopping = True
        self.inner.stopping(running)

    def done(self):
        with self._lock:
            left, self._open = list(self._open.values()), {}
        for task in left:  # started, never finished: the run ended around it
            self._queue.put(("ABORT", task, None, _now()))
        if self._label is not None:
            state = "ABORT" if self._stopping else "FAIL" if self._failed else "COMPLETE"
            self._queue.put(("RUN", state, self._label, _now()))
        self._queue.put(_DONE)
        self._thread.join(FLUSH_SECONDS)
        if self._thread.is_alive():
            self.warn(
                f"warning: OpenLineage events still unsent after {FLUSH_SECONDS:.0f}s "
                f"(about {self._queue.qsize()}) are dropped; the run itself is unaffected"
            )
        try:
            self.client.close(1.0)
        except Exception:  # noqa: BLE001 - closing a broken transport is not the run's failure
            pass
        if self.failure:
            self.warn(
                f"warning: OpenLineage events could not be sent ({self.failure}); "
                f"{self.dropped} event(s) dropped, the run itself is unaffected"
            )
        self.inner.done()

    # -- the sender thread
    def _send_all(self):
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self.failure:
                self.dropped += 1
                continue
            try:
                if item[0] == "RUN":
                    self.client.emit(self.builder.run_event(*item[1:]))
                else:
                    self.client.emit(self.builder.event(*item))
                self.sent += 1
            except Exception as exc:  # noqa: BLE001 - any transport error: stop sending
                self.failure = _one_line(exc)
                self.dropped += 1


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_CHECK = re.compile(r"^(\w+)\((\w+)\)$")


class _Builder:
    """Builds events for one project; what is per model is computed once, on first use,
    in the sender thread (lineage parses every model again)."""

    def __init__(self, cp, namespace: str, models=None):
        from .adapters import adapter_class

        self.cp = cp
        self.models = sorted(models) if models is not None else None
        self.namespace = namespace
        self.ds_namespace, self.prefix = adapter_class(cp.target).lineage_namespace(
            cp.target, cp.raw.root
        )
        self.parent_run = str(_uuid())
        self._lineage = None
        self._sql: dict[tuple, str] = {}

    @property
    def lineage(self):
        if self._lineage is None:
            from . import lineage as lin
            from .adapters import adapter_class

            target, root = self.cp.target, self.cp.raw.root
            kept = lin.load_cache(root)
            before = len(kept.data)
            self._lineage = lin.compute(
                self.cp,
                self.models
                if self.models is not None
                else [n for n, node in self.cp.nodes.items() if node.kind != "source"],
                catalog=lambda tables: adapter_class(target).peek_columns(target, root, tables),
                cache=kept.data,
            )
            lin.save_cache(kept, before)
        return self._lineage

    def event(self, state: str, task, result, when: str):
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import (
            error_message_run,
            job_type_job,
            nominal_time_run,
            parent_run,
            sql_job,
        )

        run_facets = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=self.parent_run),
                job=parent_run.Job(namespace=self.namespace, name=self.cp.name),
            )
        }
        if task.interval is not None:
            run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=iso(task.interval.start) + "Z",
                nominalEndTime=iso(task.interval.end) + "Z",
            )
        if state == "FAIL" and result is not None and result.error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=result.error, programmingLanguage="SQL"
            )
        job_facets = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH",
                integration="PIPE",
                jobType="SEED" if task.kind == "seed" else "MODEL",
            )
        }
        query = self._query(task)
        if query:
            job_facets["sql"] = sql_job.SQLJobFacet(query=query, dialect=self.cp.target.dialect)
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=when,
            producer=PRODUCER,
            run=Run(runId=self._run_id(task), facets=run_facets),
            job=Job(namespace=self.namespace, name=task.model, facets=job_facets),
            inputs=self._inputs(task),
            outputs=[self._output(task, result)],
        )

    def run_event(self, state: str, label: str, when: str):
        """The pipe run itself: the parent job (the project) of every task's run."""
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import job_type_job, nominal_time_run

        from .intervals import parse_label

        facets = {}
        try:
            span = parse_label(label)
            facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=iso(span.start) + "Z", nominalEndTime=iso(span.end) + "Z"
            )
        except UserError:
            pass
        job_type = job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="PIPE", jobType="RUN"
        )
        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=when,
            producer=PRODUCER,
            run=Run(runId=self.parent_run, facets=facets),
            job=Job(namespace=self.namespace, name=self.cp.name, facets={"jobType": job_type}),
            inputs=[],
            outputs=[],
        )

    def _run_id(self, task) -> str:
        # one OpenLineage run per task of this pipe run: the same id for START and its end
        return str(_uuid_for(self.parent_run, task.id))

    def _query(self, task) -> str:
        if task.sql:
            return task.sql
        if task.kind == "seed" or task.interval is None:
            return ""
        key = (task.model, task.interval)  # a backfill's stub: its SQL, made as a plan would
        if key not in self._sql:
            self._sql = {key: self.cp.model_sql(task.model, task.interval)}  # keep one
        return self._sql[key]

    def _dataset(self, name: str) -> tuple[str, str]:
        return self.ds_namespace, self.prefix + name

    def _inputs(self, task):
        from openlineage.client.event_v2 import InputDataset

        if task.kind == "seed":
            path = (self.cp.raw.root / self.cp.nodes[task.model].path).resolve()
            return [InputDataset(namespace="file", name=path.as_posix())]
        node = self.cp.nodes.get(task.model)
        out = []
        for up in node.upstream if node else ():
            ns, name = self._dataset(up)
            out.append(InputDataset(namespace=ns, name=name, facets=self._schema_facets(up)))
        return out

    def _schema_facets(self, name: str) -> dict:
        from openlineage.client.facet_v2 import schema_dataset

        table = self.lineage.tables.get(name)
        if table is None or not table.columns:
            return {}
        types = dict(table.types)
        return {
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=c, type=types.get(c))
                    for c in table.columns
                ]
            )
        }

    def _output(self, task, result):
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import (
            column_lineage_dataset,
            data_quality_assertions_dataset,
            output_statistics_output_dataset,
        )

        ns, name = self._dataset(task.table or task.model)
        facets = self._schema_facets(task.model)
        table = self.lineage.tables.get(task.model)
        if table is not None and table.parents:
            fields = {}
            for column, parents in table.parents:
                if not parents:  # a literal, count(*): derived from no column
                    continue
                fields[column] = column_lineage_dataset.Fields(
                    inputFields=[
                        column_lineage_dataset.InputField(
                            namespace=self._dataset(p.table)[0],
                            name=self._dataset(p.table)[1],
                            field=p.name,
                        )
                        for p in parents
                    ]
                )
            facets["columnLineage"] = column_lineage_dataset.ColumnLineageDatasetFacet(
                fields=fields
            )
        output_facets = {}
        if result is not None:
            if result.checks:
                facets["dataQualityAssertions"] = (
                    data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                        assertions=[_assertion(c) for c in result.checks]
                    )
                )
            if result.rows is not None:
                output_facets["outputStatistics"] = (
                    output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                        rowCount=result.rows
                    )
                )
        return OutputDataset(namespace=ns, name=name, facets=facets, outputFacets=output_facets)


def _assertion(check):
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    m = _CHECK.match(check.name)
    kind = m[1] if m else check.name.split("(", 1)[0]
    return dq.Assertion(
        assertion=kind,
        success=check.status == "pass",
        column=m[2] if m else None,
        severity=check.severity,
        name=check.name,
        expected="0",
        actual=str(check.failures),
    )


def _uuid():
    from openlineage.client.uuid import generate_new_uuid

    return generate_new_uuid()


def _uuid_for(parent: str, task_id: str):
    import uuid

    return uuid.uuid5(uuid.UUID(parent), task_id)
