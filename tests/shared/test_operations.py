"""The operators' kit in deploy/: Prometheus config and alert rules that Prometheus itself accepts,
Grafana dashboards that parse, a compose file valid against the Compose specification, and the
metric names they use (which the end-to-end test checks against the running services)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "le", "inf", "nan",
}  # fmt: skip


def promql_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions (followed by
    "("), label names (inside {} or by/without lists), keywords, strings or durations."""
    expr = re.sub(r'"[^"]*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range durations
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[m.end() :].lstrip()
        if rest.startswith("(") or m.group().lower() in PROMQL_WORDS:
            continue
        names.add(re.sub(r"_(bucket|sum|count)$", "", m.group()))
    return names


def used_metrics() -> set[str]:
    return set().union(*(metric_names(e) for e in promql_exprs()))


def test_metric_names_are_read_out_of_promql() -> None:
    assert metric_names(
        'sum by (service) (rate(http_requests_total{status=~"5.."}[5m])) > 0.01'
    ) == {"http_requests_total"}
    assert metric_names(
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"
    ) == {"http_request_duration_seconds"}
    assert {"kafka_consumer_lag", "outbox_oldest_unpublished_age_seconds"} <= used_metrics()


def test_prometheus_accepts_the_config_and_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        # .ci/run installs Debian's prometheus (promtool); a developer without it gets the
        # structural check below, CI never does.
        assert os.environ.get("CI") != "true", "promtool is missing in CI"
        rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                assert {"alert", "expr", "labels", "annotations"} <= set(rule)
                assert rule["labels"]["severity"] in {"warning", "critical"}
        return
    for args in (
        ["check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        ["check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
    ):
        run = subprocess.run([promtool, *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def test_every_alert_says_what_is_wrong_in_vietnamese_and_english() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            summary = rule["annotations"]["summary"]
            assert "(" in summary and summary.index("(") > 0, summary  # Vietnamese (English)


def test_grafana_is_provisioned_with_the_dashboards() -> None:
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "cchc.yml").read_text()
    )
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "prometheus" and panel["targets"]


def test_the_compose_file_is_valid_compose() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    run = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
