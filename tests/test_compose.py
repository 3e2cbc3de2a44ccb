"""docker-compose.yml is valid and production-shaped (AOF on, healthcheck, one image for all)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT


def test_compose_config_is_valid():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed (make test installs it with apt-get)")
    proc = subprocess.run([tool, "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_compose_services_are_production_shaped():
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = spec["services"]
    assert {"redis", "worker", "beat", "sandbox", "web"} <= set(services)
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert "healthcheck" in redis
    for name in ("worker", "beat", "sandbox", "web"):
        assert services[name]["build"] == "."
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "SHARER_REDIS_URL" in services[name]["environment"]
    assert "tasks" in services["worker"]["command"] and "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]
    web = services["web"]
    assert web["command"][:2] == ["sharer", "web"] and "SHARER_WEB_SECRET" in web["environment"]
    assert all(p.startswith("127.0.0.1:") for p in web["ports"])  # published on loopback only
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
