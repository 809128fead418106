"""The compose file runs what production needs: pinned images, ports on loopback only, a worker, a readiness check."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker" / "compose.yaml"


def test_compose_pins_images_binds_loopback_and_runs_a_worker_with_a_readiness_check() -> None:
    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    for name, service in services.items():
        image = str(service.get("image", ""))
        if name not in ("app", "worker"):  # ours is built here; every other image has a fixed version
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["environment"]["VUOSIKELLO_SCHEDULER_ENABLED"] == "true"
    assert services["app"]["environment"]["VUOSIKELLO_SCHEDULER_ENABLED"] == "false"
    assert "/health/ready" in " ".join(services["app"]["healthcheck"]["test"])
    assert services["app"]["environment"]["VUOSIKELLO_LOG_FORMAT"] == "json"
