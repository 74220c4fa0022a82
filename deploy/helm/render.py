"""Render the chart with each deploy/helm/rag/ci/*-values.yaml into deploy/k8s/*.yaml.

    python deploy/helm/render.py           # needs `helm` on PATH; no network
    python deploy/helm/render.py --check   # exit 1 if deploy/k8s is not what the chart renders

The rendered files are committed so that CI, which has no helm, can validate the manifests
(tests/unit/test_deploy.py) and notice a chart changed without re-rendering: each file's first
line carries a digest of the chart's files.

Every ci values file leaves `qdrant.enabled` false, so the Qdrant chart dependency is never
rendered; `helm template` still wants it in charts/, so when it has not been fetched
(`helm dependency build`, which needs the network) an empty stand-in with the same name and
version is put in a temporary copy of the chart.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE / "rag"
OUT = HERE.parent / "k8s"
RELEASE, NAMESPACE = "rag", "rag"
HEADER = "# Rendered by deploy/helm/render.py from deploy/helm/rag; chart digest {digest}\n"


def chart_digest(chart: Path = CHART) -> str:
    """sha256 over the chart's own files (charts/ holds fetched dependencies: left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        relative = path.relative_to(chart).as_posix()
        if relative.startswith("charts/"):
            continue
        digest.update(relative.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def value_files(chart: Path = CHART) -> list[Path]:
    return sorted((chart / "ci").glob("*-values.yaml"))


def output_for(values: Path) -> Path:
    return OUT / (values.name.removesuffix("-values.yaml") + ".yaml")


def render(values: Path, helm: str = "helm") -> str:
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(CHART, chart)
        meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
        for dep in meta.get("dependencies", []):
            if not list((chart / "charts").glob(f"{dep['name']}*")):
                stub = chart / "charts" / dep["name"]
                stub.mkdir(parents=True)
                (stub / "Chart.yaml").write_text(
                    yaml.safe_dump(
                        {"apiVersion": "v2", "name": dep["name"], "version": dep["version"]}
                    )
                )
        result = subprocess.run(
            [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, "-f", str(values)],
            check=True,
            capture_output=True,
            text=True,
        )
    return HEADER.format(digest=chart_digest()) + result.stdout


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for values in value_files():
        target, text = output_for(values), render(values)
        if check:
            if not target.exists() or target.read_text() != text:
                stale.append(target)
        else:
            target.write_text(text)
            print(f"wrote {target.relative_to(HERE.parent.parent)}")
    for target in stale:
        print(f"{target} differs from `helm template`: run python deploy/helm/render.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
