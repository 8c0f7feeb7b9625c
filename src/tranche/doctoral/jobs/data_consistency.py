"""dataConsistencyJob: find what the portal's services disagree on, fix what is safe, report.

Six tasklet steps (seed 004 task 13), each working in committed slices of
``DOCTORAL_CONSISTENCY_CHUNK_SIZE`` rows so a stop or a crash resumes where it
was; the databases are separate servers, so every cross-database check reads
each side and joins in memory (``tranche.doctoral.consistency``):

1. ``verifyUserEnrollmentStep`` — enrollments of doctorants deleted from userdb:
   re-enrollment blocked, admins told;
2. ``verifyEnrollmentDefenseStep`` — defense requests without a VALIDE enrollment:
   reported to the admins and the thesis director (nothing is changed);
3. ``verifyUserRolesStep`` — ROLE_DOCTORANT_ACTIF / ROLE_DOCTEUR as user-service
   would write them;
4. ``checkOrphanedDocumentsStep`` — unreferenced uploads moved to ``orphelins/``;
5. ``retryPendingNotificationsStep`` — PENDING notifications older than a day re-sent;
6. ``generateAnomalyReportStep`` — only when something was found (and not in a
   dry run): PDF, mail, ``ALERTE_SYSTEME``.

SMTP down during the report's mail: the step FAILS (like monthlyReportJob's
mail step) naming the recipients not reached and the SMTP error; every attempt
is an ``ANOMALY_REPORT_MAIL`` audit row (``SENT``/``FAILED``) committed on its
own, so a restart re-runs only step 6 and mails only those without a ``SENT``
row — each recipient gets the report once, and its anomalies, already in the
``anomalie_signalee`` ledger, are neither lost nor reported by a later run
(:mod:`tranche.doctoral.consistency.report`).

``dryRun=true`` (job parameter) finds and counts everything and changes nothing:
no write to any owner's database, no file moved, no mail, no event, no report.
"""

from __future__ import annotations

from collections.abc import Sequence

from tranche.batch.job import Job, TaskletStep
from tranche.batch.listeners import BatchListener
from tranche.doctoral.consistency import defenses, orphans, report, retry, roles, users
from tranche.doctoral.consistency.anomalies import anomalies_found
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.jobs.common import JobSpec

__all__ = ["DESCRIPTION", "JOB_NAME", "STEPS", "build"]

JOB_NAME = "dataConsistencyJob"
DESCRIPTION = (
    "Nightly cross-service consistency check: missing users, defenses without enrollment, "
    "roles, orphaned uploads, stuck notifications; anomaly report when anything is found"
)
STEPS = (
    "verifyUserEnrollmentStep",
    "verifyEnrollmentDefenseStep",
    "verifyUserRolesStep",
    "checkOrphanedDocumentsStep",
    "retryPendingNotificationsStep",
    "generateAnomalyReportStep",
)


def build(deps: Deps, cron: str, listeners: Sequence[BatchListener] = ()) -> JobSpec:
    checks = (users, defenses, roles, orphans, retry)
    steps = [
        TaskletStep(name, check.tasklet(deps)) for name, check in zip(STEPS, checks, strict=False)
    ]
    steps.append(TaskletStep(STEPS[-1], report.tasklet(deps), when=anomalies_found))

    job = Job(JOB_NAME, steps, listeners=listeners, description=DESCRIPTION)
    # No estimate: the steps read rows of four databases and files, whose total is
    # only known once they ran (the CLI shows a spinner rather than a wrong bar).
    return JobSpec(job, cron, DESCRIPTION, supports_dry_run=True)
