"""The deployment files in deploy/ against the code they deploy.

Structural checks that need nothing but the project's own dependencies: the compose file gives
every process of ours the settings it needs (read back through `Settings`), the chart's
manifests (pre-rendered by deploy/helm/render.py) are current and valid against Kubernetes'
schemas, the dashboard queries only metrics the service exports, and the image's final stage
runs as a non-root user without compilers. Where docker compose or helm happen to be installed,
they check the same files too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.config import ApiSettings, Settings, SlackSettings, WorkerSettings
from rag.generation.model_catalog import parse_catalog

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "rag"

# The metrics the service exports: the contract between the code and the dashboard.
METRICS: dict[str, str] = {
    "rag_http_request_duration_seconds": "histogram",  # route, method, status
    "rag_retrieval_duration_seconds": "histogram",
    "rag_generation_duration_seconds": "histogram",  # model
    "rag_generation_tokens_total": "counter",  # model, kind (prompt | completion)
    "rag_generation_cost_usd_total": "counter",  # model
    "rag_answers_total": "counter",  # model, fallback_reason ("none": the first choice)
    "rag_abstentions_total": "counter",  # reason
    "rag_verified_claims_total": "counter",  # model, verifier, label
    "rag_ingest_documents_total": "counter",  # status
    "rag_ingest_chunks_total": "counter",
    "rag_ingest_failures_total": "counter",  # reason
    "rag_ingest_document_duration_seconds": "histogram",
    "rag_ingest_job_duration_seconds": "histogram",
    "rag_queue_depth": "gauge",  # queue
    "rag_circuit_breaker_state": "gauge",  # backend: 0 closed, 1 half-open, 2 open
}
WORKER_METRICS_PORT: int = Settings.model_fields["observability"].default.worker_metrics_port
CORE_QUEUES = [WorkerSettings().queue, SlackSettings().queue]

# Compose -------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's `${VAR:-default}` with nothing set in the environment."""
    return _VARIABLE.sub(lambda m: "$" if m[0] == "$$" else m[2] or "", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    return data


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The long-running services that run our image: `rag serve` and `rag worker`."""
    return {n: s for n, s in compose["services"].items() if s.get("command", [""])[0] == "rag"}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp: Path) -> Settings:
    """What `get_settings()` makes of exactly these environment variables."""
    for name in list(os.environ):
        if name.startswith(("RAG_", "QDRANT_")) or name in ("DATABASE_URL", "CELERY_BROKER_URL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp)  # no ./rag.toml
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_compose_services_of_ours_get_the_settings_they_need(compose, monkeypatch, tmp_path):
    services = ours(compose)
    assert set(services) == {"api", "worker"}
    for name, service in services.items():
        env = {k: interpolate(str(v)) for k, v in service["environment"].items()}
        settings = settings_from(env, monkeypatch, tmp_path)
        assert settings.sqlalchemy_url.startswith("postgresql+psycopg://"), name
        assert settings.broker_url == "redis://redis:6379/0", name
        assert settings.qdrant.url == "http://qdrant:6333", name
        assert not settings.embedded_store
        assert settings.data_dir == Path("/data"), name
        assert not settings.run_embedded_worker, f"{name} must not run a worker of its own"
        # Uploads are staged under data_dir and read by a worker: one shared volume.
        assert "data:/data" in service["volumes"], name
        catalog = settings.generator.catalog_file
        assert catalog is not None
        assert f"./catalog.toml:{catalog}:ro" in service["volumes"], name
    assert services["api"]["environment"]["RAG_WORKER__EMBEDDED"] == "false"


def test_compose_catalog_points_at_the_llm_service(compose):
    catalog = parse_catalog(tomllib.loads((DEPLOY / "catalog.toml").read_text()))
    served = catalog.models["llm"]
    assert served.backend == "openai_compat" and served.is_self_hosted
    args = compose["services"]["llm"]["command"]
    assert served.model == args[args.index("--alias") + 1]
    assert served.base_url == f"http://llm:{args[args.index('--port') + 1]}/v1"
    assert catalog.policies[catalog.default_policy].models == ["llm", "local"]


def test_compose_worker_scales_and_api_is_checked(compose):
    services = compose["services"]
    worker, api = services["worker"], services["api"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["rag", "worker"]
    assert worker["depends_on"]["api"]["condition"] == "service_healthy"
    assert any("/healthz" in part for part in api["healthcheck"]["test"])
    assert api["ports"] and all(p.endswith(f":{ApiSettings().port}") for p in api["ports"])
    assert not any("container_name" in s for s in services.values())


def test_compose_references_are_complete(compose):
    services, volumes = compose["services"], set(compose["volumes"])
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith(".") or source in volumes, f"{name}: volume {source}"
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        image = interpolate(service["image"])
        if "build" not in service:
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"
    postgres = services["postgres"]
    assert "healthcheck" in postgres and postgres["volumes"][0].startswith("postgres:")
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]


def test_compose_validates_with_docker_compose_when_installed():
    tools = [["docker-compose"]] if shutil.which("docker-compose") else []
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
        tools += [["docker", "compose"]] if plugin.returncode == 0 else []
    # The tool is someone else's Python program: none of our interpreter's paths.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for tool in tools:
        for extra in ([], ["--profile", "monitoring"]):
            command = [*tool, "-f", str(DEPLOY / "compose.yml"), *extra, "config", "-q"]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
            assert done.returncode == 0, done.stderr


# Monitoring ----------------------------------------------------------------------------------


def test_prometheus_scrapes_every_api_and_worker_replica():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = (
        ("rag-api", "api", ApiSettings().port),
        ("rag-worker", "worker", WORKER_METRICS_PORT),
    )
    for job, service, port in targets:
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["port"] == port and sd["type"] == "A"
        assert jobs[job].get("metrics_path", "/metrics") == "/metrics"


def test_grafana_provisioning_loads_the_dashboard_and_datasource(compose):
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards/rag.yml").read_text())["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    datasources = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(rag_[a-z0-9_]+)", expr))


def test_dashboard_queries_only_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana/dashboards/rag.json").read_text())
    assert dashboard["schemaVersion"] >= 36
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for name in _metric_names(expr):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                if base != name:
                    assert METRICS.get(base) == "histogram", f"{name} in {panel['title']}"
                else:
                    assert name in METRICS, f"unknown metric {name} in {panel['title']}"
                    assert METRICS[name] != "histogram", f"{name}: use _bucket/_count/_sum"
                used.add(base)
            if "histogram_quantile" in expr:
                assert "_bucket[" in expr and "le" in expr, expr
            for counter in re.findall(r"rate\((rag_[a-z0-9_]+)", expr):
                assert METRICS.get(counter) != "gauge", f"rate() of gauge {counter}"
    assert used == set(METRICS), f"metrics without a panel: {set(METRICS) - used}"


# Helm chart ----------------------------------------------------------------------------------


def _renderer() -> Any:
    spec = importlib.util.spec_from_file_location("render", DEPLOY / "helm" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manifests() -> dict[str, list[dict[str, Any]]]:
    render = _renderer()
    rendered = {}
    for values in render.value_files():
        text = render.output_for(values).read_text()
        rendered[values.name] = [d for d in yaml.safe_load_all(text) if d]
    return rendered


def test_rendered_manifests_match_the_chart():
    render = _renderer()
    assert render.value_files(), "no ci/*-values.yaml to render"
    for values in render.value_files():
        text = render.output_for(values).read_text()
        assert text.startswith(render.HEADER.format(digest=render.chart_digest())), (
            "deploy/helm/rag changed since deploy/k8s was rendered: "
            "run python deploy/helm/render.py"
        )
        if shutil.which("helm"):
            assert render.render(values) == text


@pytest.mark.parametrize("version", ["1.29.0", "latest"])
def test_rendered_manifests_are_valid_kubernetes(version):
    import kubernetes_validate

    target = kubernetes_validate.latest_version() if version == "latest" else version
    for documents in _manifests().values():
        for doc in documents:
            group = doc["apiVersion"].split("/")[0]
            if group in ("keda.sh", "monitoring.coreos.com"):  # CRDs: checked below
                continue
            kubernetes_validate.validate(doc, target, strict=True)


def _by_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def test_chart_runs_api_and_workers_as_the_service_expects():
    dockerfile_user = _final_stage()["USER"][-1].split(":")[0]
    for source, documents in _manifests().items():
        deployments = _by_kind(documents, "Deployment")
        api, worker = deployments["rag-api"], deployments["rag-worker"]
        claims = set()
        for deployment in (api, worker):
            pod = deployment["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            assert pod["securityContext"]["runAsNonRoot"]
            assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user
            assert container["securityContext"]["readOnlyRootFilesystem"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in pod["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]]
            claims.add(volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"])
            assert {"requests", "limits"} <= set(container["resources"])
        assert len(claims) == 1, f"{source}: api and workers must share one uploads volume"
        (api_container,) = api["spec"]["template"]["spec"]["containers"]
        assert {"name": "RAG_WORKER__EMBEDDED", "value": "false"} in api_container["env"]
        assert api_container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert api_container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        (worker_container,) = worker["spec"]["template"]["spec"]["containers"]
        args = worker_container["args"]
        assert args[:2] == ["rag", "worker"]
        assert args[args.index("--queues") + 1].split(",") == CORE_QUEUES
        ports = [p["containerPort"] for p in worker_container["ports"]]
        assert ports == [WORKER_METRICS_PORT]


def test_chart_settings_reach_the_service(monkeypatch, tmp_path):
    documents = _manifests()["external-values.yaml"]
    (config,) = _by_kind(documents, "ConfigMap").values()
    (secret,) = _by_kind(documents, "Secret").values()
    shared = config["data"] | secret["stringData"]
    for name, deployment in _by_kind(documents, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = shared | {e["name"]: e["value"] for e in container["env"]}
        settings = settings_from(env, monkeypatch, tmp_path)
        assert settings.sqlalchemy_url.startswith("postgresql+psycopg://"), name
        assert settings.broker_url.startswith("redis://"), name
        assert settings.qdrant.url == "http://qdrant:6333", name
        assert settings.data_dir == Path("/data"), name
        assert not settings.run_embedded_worker, name
        if name == "rag-worker":
            port = settings.observability.worker_metrics_port
            assert [p["containerPort"] for p in container["ports"]] == [port]
    assert set(_by_kind(documents, "HorizontalPodAutoscaler")) == {"rag-api", "rag-worker"}


def test_chart_keda_scales_workers_on_their_queues():
    documents = _manifests()["keda-values.yaml"]
    assert not _by_kind(documents, "HorizontalPodAutoscaler"), "KEDA owns the worker's HPA"
    (scaled,) = _by_kind(documents, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "rag-worker"
    triggers = scaled["spec"]["triggers"]
    assert [t["metadata"]["listName"] for t in triggers] == CORE_QUEUES
    for trigger in triggers:
        assert trigger["type"] == "redis"
        # KEDA's CRD takes trigger metadata as strings only.
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
        auth = trigger["authenticationRef"]["name"]
        assert auth in _by_kind(documents, "TriggerAuthentication")
    monitors = _by_kind(documents, "ServiceMonitor")
    assert {m["spec"]["endpoints"][0]["path"] for m in monitors.values()} == {"/metrics"}
    catalog = _by_kind(documents, "ConfigMap")["rag-catalog"]["data"]["catalog.toml"]
    parse_catalog(tomllib.loads(catalog))


def test_chart_defaults_match_the_settings():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["worker"]["queues"] == CORE_QUEUES
    assert [t["queue"] for t in values["worker"]["keda"]["triggers"]] == CORE_QUEUES
    assert values["api"]["port"] == ApiSettings().port
    assert values["persistence"]["accessModes"] == ["ReadWriteMany"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    (qdrant,) = chart["dependencies"]
    assert qdrant["condition"] == "qdrant.enabled"
    assert qdrant["repository"] == "https://qdrant.github.io/qdrant-helm"


# Image ---------------------------------------------------------------------------------------


def _stages() -> list[dict[str, list[str]]]:
    """Each stage's instructions, continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    stages: list[dict[str, list[str]]] = []
    for instruction in re.split(r"\n(?=[A-Z]+\s)", re.sub(r"\\\n", " ", "\n".join(lines))):
        keyword, _, rest = instruction.strip().partition(" ")
        if keyword == "FROM":
            stages.append({})
        if stages and keyword:
            stages[-1].setdefault(keyword, []).append(rest.strip())
    return stages


def _final_stage() -> dict[str, list[str]]:
    return _stages()[-1]


def test_image_final_stage_is_non_root_and_has_no_compilers():
    final = _final_stage()
    user = final["USER"][-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (runAsNonRoot checks it)"
    installed = " ".join(final["RUN"])
    for tool in ("build-essential", "gcc", "g++", "cmake", "make ", "clang"):
        assert tool not in installed, f"{tool} in the final stage"
    assert any("--from=builder" in c and "/opt/venv" in c for c in final["COPY"])
    env = dict(pair.split("=", 1) for e in final["ENV"] for pair in e.split())
    assert env["HF_HUB_OFFLINE"] == "1" and env["DO_NOT_TRACK"] == "1"
    # Kubernetes runs it with a read-only root: what libraries cache at run time goes to /tmp.
    assert env["MPLCONFIGDIR"].startswith("/tmp/") and env["NUMBA_CACHE_DIR"].startswith("/tmp/")
    assert final["EXPOSE"] == [str(ApiSettings().port)]
    assert json.loads(final["CMD"][-1])[:2] == ["rag", "serve"]


def test_image_builder_installs_cpu_torch_first_and_the_whole_project():
    builder = _stages()[0]
    runs = builder["RUN"]
    torch = next(i for i, r in enumerate(runs) if "download.pytorch.org/whl/cpu" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install .* \.( |$)", r))
    assert torch < project
    assert any("unstructured-inference" in r and "--no-deps" in r for r in runs)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {c.split()[0] for c in builder["COPY"]}
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for package in (p.rstrip("*") for p in packages):
        assert package in copied, f"the image does not COPY {package}"
        assert f"!{package}/" in ignore, f"Dockerfile.dockerignore leaves out {package}"


def test_image_and_deployments_use_real_cli_options(compose):
    import typer.main

    from cli.main import app

    commands = typer.main.get_command(app).commands
    options = {name: {opt for p in commands[name].params for opt in p.opts} for name in commands}
    used = [json.loads(_final_stage()["CMD"][-1]), compose["services"]["api"]["command"]]
    for documents in _manifests().values():
        for deployment in _by_kind(documents, "Deployment").values():
            used += [c["args"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    for command in used:
        assert command[0] == "rag" and command[1] in options, command
        flags = [part for part in command[2:] if part.startswith("--")]
        assert set(flags) <= options[command[1]], command
