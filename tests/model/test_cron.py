"""PinCronJob: schedules checked with croniter, time zones with zoneinfo."""

from __future__ import annotations

from typing import Any

import pytest

from pincompute.model.cron import cron_errors, time_zone_errors

from ._support import TEMPLATE, only_cause, valid


def cron(**spec: Any) -> dict[str, Any]:
    return {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}, **spec}


def test_cron_defaults() -> None:
    spec = valid("PinCronJob", cron())
    assert spec["timeZone"] == "UTC"
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    job = spec["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["backoffLimit"] == 6
    assert "tier" not in job  # the runs inherit the cron job's tier and placement
    assert spec["tier"] == "ondemand"


@pytest.mark.parametrize("schedule", ["0 * * * *", "@daily", "@hourly", "30 2 * * 1-5",
                                      "0 0 1 */2 *", "*/15 9-17 * * mon-fri"])
def test_good_schedules(schedule: str) -> None:
    assert valid("PinCronJob", cron(schedule=schedule))["schedule"] == schedule


@pytest.mark.parametrize("schedule", ["", "61 * * * *", "* * *", "0 0 * * * *", "@every 5m",
                                      "0 0 30 2 *", "* " * 130, "0 0 31 4 *",
                                      "@reboot", "CRON_TZ=UTC 0 * * * *", "not a cron"])
def test_bad_schedule_names_field(schedule: str) -> None:
    cause = only_cause("PinCronJob", cron(schedule=schedule))
    assert cause.field == "spec.schedule"


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Los_Angeles", "UTC", "Asia/Tokyo"])
def test_good_time_zones(zone: str) -> None:
    assert valid("PinCronJob", cron(timeZone=zone))["timeZone"] == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "PST8PDT/x"])
def test_bad_time_zone_names_field(zone: str) -> None:
    cause = only_cause("PinCronJob", cron(timeZone=zone))
    assert cause.field == "spec.timeZone"
    assert "time zone" in cause.message


@pytest.mark.parametrize(("spec", "field"), [
    (cron(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy"),
    (cron(startingDeadlineSeconds=-1), "spec.startingDeadlineSeconds"),
    (cron(successfulJobsHistoryLimit=-1), "spec.successfulJobsHistoryLimit"),
    ({"schedule": "@daily"}, "spec.jobTemplate"),
    ({"schedule": "@daily", "jobTemplate": {"spec": {"template": TEMPLATE, "tier": "reserved"}}},
     "spec.jobTemplate.spec.tier"),
    ({"schedule": "@daily", "jobTemplate": {"spec": {"template": TEMPLATE,
                                                     "completionMode": "Indexed"}}},
     "spec.jobTemplate.spec.completions"),
])
def test_bad_cron_job_names_field(spec: dict[str, Any], field: str) -> None:
    assert only_cause("PinCronJob", spec).field == field


def test_cron_job_name_leaves_room_for_run_suffix() -> None:
    assert valid("PinCronJob", cron(), name="a" * 52)
    assert only_cause("PinCronJob", cron(), name="a" * 53).field == "metadata.name"


def test_helpers() -> None:
    assert cron_errors("*/5 * * * *") is None
    assert cron_errors("*/5 * * *")
    assert time_zone_errors("Europe/Berlin") is None
    assert time_zone_errors("Nowhere/Special")
