"""deploy/k8s: the manifests parse and say what docs/scaling.md promises.

The parse checks always run (PyYAML is a dev dependency). With ``kubectl`` on PATH (CI
installs Debian's ``kubernetes-client``, see ``.ci/run``) the kustomization is also
rendered offline (``kubectl kustomize``); ``kubectl apply --dry-run=client`` runs only
when a cluster answers, since even a client-side dry run asks the API server for its
resource types and schemas. Whatever does not run is skipped with its reason (``pytest
-rs``), never passed silently.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rnnserve.ops.config import load_config

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
PORT = 50051


def _documents() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def _one(kind: str, name: str) -> dict:
    matches = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name)
    return matches[0]


def _container() -> dict:
    containers = _one("Deployment", "rnnserve")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_every_resource_is_listed_and_well_formed() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == on_disk  # the example Secret is deliberately not applied
    for doc in _documents():
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), doc
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "rnnserve"


def test_probes_are_native_grpc_health_checks() -> None:
    container = _container()
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        assert spec["grpc"]["port"] == PORT, probe
        assert set(spec) - {"grpc", "periodSeconds", "failureThreshold", "timeoutSeconds",
                            "initialDelaySeconds", "successThreshold"} == set(), probe
    assert container["readinessProbe"]["grpc"]["service"] == "rnnserve.v1.Generation"
    assert "service" not in container["livenessProbe"]["grpc"]  # overall health ""
    assert container["ports"] == [{"name": "grpc", "containerPort": PORT, "protocol": "TCP"}]


def test_server_binds_all_interfaces_with_the_mounted_config() -> None:
    container = _container()
    args = container["args"]
    assert args[0] == "serve"
    assert args[args.index("--host") + 1] == "0.0.0.0"
    assert int(args[args.index("--port") + 1]) == PORT
    config_path = args[args.index("--config") + 1]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == config_path)
    volumes = {v["name"]: v for v in _one("Deployment", "rnnserve")["spec"]["template"]["spec"]["volumes"]}
    configmap = volumes[mount["name"]]["configMap"]["name"]
    assert mount["subPath"] in _one("ConfigMap", configmap)["data"]


def test_configmap_holds_a_valid_config_whose_secret_paths_are_mounted(tmp_path: Path) -> None:
    text = _one("ConfigMap", "rnnserve-config")["data"]["rnnserve.toml"]
    (tmp_path / "rnnserve.toml").write_text(text)
    config = load_config(tmp_path / "rnnserve.toml")  # unknown keys would raise
    assert config.grace_seconds < _one("Deployment", "rnnserve")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    assert config.auth_token_file is not None
    mounts = {m["mountPath"]: m["name"] for m in _container()["volumeMounts"]}
    token_dir = str(Path(config.auth_token_file).parent)
    assert token_dir in mounts
    volumes = {v["name"]: v for v in _one("Deployment", "rnnserve")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts[token_dir]]["secret"]["secretName"] == "rnnserve-auth"
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert example["kind"] == "Secret" and example["metadata"]["name"] == "rnnserve-auth"
    assert "token" in example["stringData"]


def test_security_context_and_resources() -> None:
    pod = _one("Deployment", "rnnserve")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    container = _container()
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert "add" not in security["capabilities"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}  # the only writable path: an emptyDir
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()


def test_headless_service_for_client_side_round_robin() -> None:
    service = _one("Service", "rnnserve-headless")
    labels = _one("Deployment", "rnnserve")["spec"]["template"]["metadata"]["labels"]
    spec = service["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is False
    assert spec["selector"].items() <= labels.items()
    assert spec["ports"][0]["port"] == PORT and spec["ports"][0]["targetPort"] == "grpc"
    assert _one("Deployment", "rnnserve")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    doc = (K8S / "service-headless.yaml").read_text()
    assert "dns:///rnnserve-headless.rnnserve.svc.cluster.local:50051" in doc


#: Why a kubectl test did not run (printed by pytest -rs); CI installs kubectl (.ci/run), so it runs there.
NO_KUBECTL = ("kubectl is not on PATH: the rendering check did not run (install Debian's kubernetes-client, "
              "as .ci/run does); the parse checks above still ran")


def _kubectl() -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(NO_KUBECTL)
    return kubectl


def test_kubectl_renders_the_kustomization_offline() -> None:
    """``kubectl kustomize`` needs no cluster: every listed resource renders, in the rnnserve namespace."""
    rendered = subprocess.run([_kubectl(), "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in _documents())
    assert all(d["metadata"]["namespace"] == "rnnserve" for d in docs)
    assert _container() == next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"][
        "containers"][0]  # rendering changes nothing but the namespace


def test_kubectl_dry_run_apply_against_a_cluster() -> None:
    """``kubectl apply --dry-run=client`` validates against the API's schemas; it still asks an API server
    for them (discovery, OpenAPI), so it runs only where one answers and is skipped, saying so, elsewhere."""
    kubectl = _kubectl()
    probe = subprocess.run([kubectl, "get", "--raw", "/version", "--request-timeout=5s"], capture_output=True,
                           text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("no Kubernetes API server answered `kubectl get --raw /version` (apply --dry-run=client "
                    "still fetches the API's resource types and schemas): "
                    + (probe.stderr.strip().splitlines() or ["no output"])[-1][:200])
    dry = subprocess.run([kubectl, "apply", "--dry-run=client", "-k", str(K8S), "--request-timeout=5s"],
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("(dry run)") == len(_documents()), dry.stdout
