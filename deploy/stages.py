"""Reading ``.chalice/config.json`` the way Chalice does, for the settings the
deploy tooling needs (app name, per-stage environment, architecture)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stage:
    app_name: str
    name: str
    environment: dict[str, str]
    architecture: str
    project_dir: Path
    api_stage: str = "api"
    log_retention_days: int = 14

    @property
    def table_prefix(self) -> str:
        return self.environment["TESSERA_TABLE_PREFIX"]

    @property
    def keys_secret(self) -> str:
        return self.environment["TESSERA_KEYS_SECRET"]

    @property
    def function_prefix(self) -> str:
        """Chalice names the API function ``<app>-<stage>`` and every other
        function ``<app>-<stage>-<name>``."""
        return f"{self.app_name}-{self.name}"


def load_config(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((project_dir / ".chalice" / "config.json").read_text())
    return data


def stage_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    return sorted(load_config(project_dir).get("stages", {}))


def load_stage(name: str, project_dir: Path = PROJECT_DIR) -> Stage:
    cfg = load_config(project_dir)
    stages = cfg.get("stages", {})
    if name not in stages:
        raise ValueError(f"no stage {name!r} in .chalice/config.json (have {sorted(stages)})")
    st = stages[name]
    # Chalice merges environment variables top level first, then the stage's.
    env = {**cfg.get("environment_variables", {}), **st.get("environment_variables", {})}
    for key in ("TESSERA_TABLE_PREFIX", "TESSERA_KEYS_SECRET"):
        if not env.get(key):
            raise ValueError(f"stage {name}: {key} must be set in .chalice/config.json")
    return Stage(
        app_name=cfg["app_name"],
        name=name,
        environment=env,
        architecture=st.get("lambda_architecture") or cfg.get("lambda_architecture") or "x86_64",
        project_dir=project_dir,
        api_stage=st.get("api_gateway_stage") or cfg.get("api_gateway_stage") or "api",
        log_retention_days=int(st.get("log_retention_in_days") or cfg.get("log_retention_in_days") or 14),
    )
