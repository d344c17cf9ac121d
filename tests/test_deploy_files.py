"""The deployment files (compose.yaml, deploy/) hold to the service's contract: parsed here,
since Docker and Kubernetes are not at hand to run them; HAProxy checks its own file."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.haproxy_support import HAPROXY_CFG, haproxy_config_for

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"

# What every replica is configured with (the Secret and ConfigMap together, or compose).
SECRET_KEYS = {
    "DATABASE_URL",
    "REDIS_URL",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_ACCOUNT_SID",
    "RECORDING_KEY",
    "OPENAI_API_KEY",
}
CONFIG_KEYS = {"PUBLIC_BASE_URL", "DRAIN_TIMEOUT_S"}
SERVE = ["voice-agent", "serve", "--host", "0.0.0.0", "--port"]
MIGRATE = ["voice-agent", "db", "upgrade"]
DOCKERFILE_UID = int(re.search(r"useradd .*--uid (\d+)", (ROOT / "Dockerfile").read_text())[1])


def seconds(value: str | int, unit: str = "s") -> float:
    """A duration as compose (`1m30s`) or HAProxy (`1h`, `5000` = ms) writes it."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        text += unit
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|s|m|h|d)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {value!r}"
    return sum(float(n) * scale[u] for n, u in parts)


# compose.yaml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def port_of(command: list[str]) -> int:
    return int(command[command.index("--port") + 1])


def test_compose_has_the_services(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "migrate", "agent", "proxy"} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["proxy"]["image"].startswith("haproxy:2.8")
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_compose_agent_serves_and_scales(services: dict[str, Any]) -> None:
    agent = services["agent"]
    assert agent["build"] == "."
    assert agent["command"][: len(SERVE)] == SERVE
    assert agent["deploy"]["replicas"] >= 2
    # Replicas of one service cannot share a fixed name or a published host port.
    assert "container_name" not in agent
    assert "ports" not in agent
    assert "/healthz" in " ".join(agent["healthcheck"]["test"])
    assert agent["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert agent["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_agent_outlives_its_drain(services: dict[str, Any]) -> None:
    agent = services["agent"]
    drain = int(agent["environment"]["DRAIN_TIMEOUT_S"])
    assert agent["stop_signal"] == "SIGTERM"
    assert seconds(agent["stop_grace_period"]) >= drain + 30


def test_compose_migrate_runs_once_on_the_agent_image(services: dict[str, Any]) -> None:
    migrate, agent = services["migrate"], services["agent"]
    assert migrate["command"] == MIGRATE
    assert migrate["image"] == agent["image"]
    assert migrate["environment"]["DATABASE_URL"] == agent["environment"]["DATABASE_URL"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"


def interpolated(value: str) -> str:
    """A compose value with each `${VAR...}` from .env as a plain stand-in."""
    return re.sub(r"\$\{(\w+)[^}]*\}", lambda m: m[1].lower(), value)


def test_compose_agent_environment(compose: dict[str, Any], services: dict[str, Any]) -> None:
    env = services["agent"]["environment"]
    assert SECRET_KEYS | CONFIG_KEYS | {"VOICE_AGENT_DATA_DIR"} <= env.keys()
    database = urlsplit(interpolated(env["DATABASE_URL"]))
    redis = urlsplit(interpolated(env["REDIS_URL"]))
    assert database.scheme == "postgresql+psycopg"
    assert database.hostname == "postgres"
    assert database.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]
    assert database.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert (redis.scheme, redis.hostname) == ("redis", "redis")
    # One named volume at the data dir for every replica: recordings and the journal.
    [volume] = [
        v.split(":")[0]
        for v in services["agent"]["volumes"]
        if v.split(":")[1] == env["VOICE_AGENT_DATA_DIR"]
    ]
    assert volume in compose["volumes"], "the data volume must be a named (shared) volume"


def test_env_example_fills_what_compose_requires() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "compose.yaml").read_text()))
    example = (ROOT / "deploy" / "env.example").read_text()
    given = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert required, "compose.yaml requires its secrets from .env"
    assert required <= given, f"missing from deploy/env.example: {sorted(required - given)}"


def test_compose_proxy_runs_deploy_haproxy_cfg(services: dict[str, Any]) -> None:
    proxy = services["proxy"]
    assert "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in proxy["volumes"]
    assert "8080:8080" in proxy["ports"]
    cfg = HAPROXY_CFG.read_text()
    assert re.search(r"^\s+bind :8080$", cfg, re.MULTILINE)
    template = re.search(r"^\s+server-template \S+ \S+ (\S+):(\d+) ", cfg, re.MULTILINE)
    assert template, "the servers come from a server-template in compose"
    host, port = template[1], int(template[2])
    assert host == "agent" and host in services
    assert port == port_of(services["agent"]["command"])


# deploy/k8s


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object in deploy/k8s by (kind, name)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                key = (doc["kind"], doc["metadata"]["name"])
                assert key not in objects, f"{key} defined twice"
                objects[key] = doc
    return objects


def only(k8s: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for (k, _), doc in k8s.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def container(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    [agent] = only(k8s, "Deployment")["spec"]["template"]["spec"]["containers"]
    return agent


def drain_timeout(k8s: dict[tuple[str, str], dict[str, Any]]) -> int:
    return int(only(k8s, "ConfigMap")["data"]["DRAIN_TIMEOUT_S"])


def test_k8s_objects_share_one_namespace(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    namespace = only(k8s, "Namespace")["metadata"]["name"]
    for (kind, name), doc in k8s.items():
        if kind != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{kind}/{name}"


def test_k8s_secret_and_config_cover_the_environment(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    secret = only(k8s, "Secret")["stringData"]
    assert set(secret) == SECRET_KEYS
    # An example only: placeholders, nothing that could be a real credential.
    for key, value in secret.items():
        assert not value or re.search(r"CHANGE_ME|example|xxxx", value), key
    config = only(k8s, "ConfigMap")["data"]
    assert config.keys() >= CONFIG_KEYS
    assert not SECRET_KEYS & config.keys(), "secrets belong in the Secret"
    assert urlsplit(config["PUBLIC_BASE_URL"]).scheme == "https"


def test_k8s_deployment_rolls_without_losing_capacity(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    spec = only(k8s, "Deployment")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_k8s_deployment_drains(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    pod = only(k8s, "Deployment")["spec"]["template"]["spec"]
    agent = container(k8s)
    pre_stop = agent["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    # The grace period covers the preStop pause, the drain, and a minute to store calls.
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain_timeout(k8s) + 60


def test_k8s_deployment_probes(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    agent = container(k8s)
    ports = {p["name"] for p in agent["ports"]} | {p["containerPort"] for p in agent["ports"]}
    ready, live, startup = (
        agent["readinessProbe"],
        agent["livenessProbe"],
        agent["startupProbe"],
    )
    assert ready["httpGet"]["path"] == "/readyz"
    assert live["httpGet"]["path"] == "/livez"  # stays 200 while draining
    assert startup["httpGet"]["path"] in ("/livez", "/healthz")
    for probe in (ready, live, startup):
        assert probe["httpGet"]["port"] in ports
    assert ready["periodSeconds"] <= 2 and ready["failureThreshold"] <= 2
    assert 60 <= startup["periodSeconds"] * startup["failureThreshold"] <= 300


def test_k8s_deployment_runs_the_image_as_built(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    pod = only(k8s, "Deployment")["spec"]["template"]["spec"]
    agent = container(k8s)
    assert agent["command"][: len(SERVE)] == SERVE
    assert port_of(agent["command"]) in {p["containerPort"] for p in agent["ports"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == DOCKERFILE_UID
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= agent["resources"][kind].keys()


def env_sources(spec: dict[str, Any]) -> dict[str, str]:
    found = {}
    for source in spec["envFrom"]:
        [(ref, target)] = source.items()
        found[ref] = target["name"]
    return found


def test_k8s_envfrom_names_the_secret_and_configmap(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    expected = {
        "secretRef": only(k8s, "Secret")["metadata"]["name"],
        "configMapRef": only(k8s, "ConfigMap")["metadata"]["name"],
    }
    assert env_sources(container(k8s)) == expected
    [migrate] = only(k8s, "Job")["spec"]["template"]["spec"]["containers"]
    assert env_sources(migrate) == expected


def test_k8s_data_volume_is_shared(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    pod = only(k8s, "Deployment")["spec"]["template"]["spec"]
    data_dir = only(k8s, "ConfigMap")["data"].get("VOICE_AGENT_DATA_DIR", "/data")
    [mount] = [m for m in container(k8s)["volumeMounts"] if m["mountPath"] == data_dir]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = k8s[("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_k8s_migrate_job(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    pod = only(k8s, "Job")["spec"]["template"]["spec"]
    [migrate] = pod["containers"]
    assert migrate["command"] == MIGRATE
    assert migrate["image"] == container(k8s)["image"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert pod["securityContext"]["runAsUser"] == DOCKERFILE_UID


def test_k8s_service_reaches_the_pods(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    service = only(k8s, "Service")["spec"]
    labels = only(k8s, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service.get("type", "ClusterIP") == "ClusterIP"
    assert service["selector"].items() <= labels.items()
    assert service.get("sessionAffinity", "None") == "None"
    [port] = service["ports"]
    assert port["port"] == 80
    [container_port] = container(k8s)["ports"]
    assert port["targetPort"] in (container_port["name"], container_port["containerPort"])


def test_k8s_ingress(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    ingress = only(k8s, "Ingress")
    service = only(k8s, "Service")
    notes = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert int(notes[prefix + "proxy-read-timeout"]) >= 3600
    assert int(notes[prefix + "proxy-send-timeout"]) >= 3600
    assert notes[prefix + "proxy-buffering"] == "off"
    assert not any("affinity" in key for key in notes), "no stickiness"

    [tls] = ingress["spec"]["tls"]
    [rule] = ingress["spec"]["rules"]
    public = urlsplit(only(k8s, "ConfigMap")["data"]["PUBLIC_BASE_URL"])
    assert tls["hosts"] == [rule["host"]] == [public.hostname]

    ports = {p["port"] for p in service["spec"]["ports"]} | {
        p["name"] for p in service["spec"]["ports"]
    }
    paths = rule["http"]["paths"]
    for path in paths:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"].get("number", backend["port"].get("name")) in ports

    def routed(url: str) -> bool:
        return any(
            url == p["path"] or url.startswith(p["path"].rstrip("/") + "/")
            for p in paths
            if p["pathType"] == "Prefix"
        )

    for url in ("/twilio/voice", "/twilio/stream-ended", "/twilio/sms", "/twilio/media-stream"):
        assert routed(url), url
    assert routed("/api/events") and routed("/console")
    assert not routed("/metrics"), "per-worker metrics are not for the public"


def test_k8s_pdb(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    pdb = only(k8s, "PodDisruptionBudget")["spec"]
    deployment = only(k8s, "Deployment")["spec"]
    assert pdb["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
    assert 1 <= pdb["minAvailable"] < deployment["replicas"]


# deploy/haproxy.cfg


def sections(cfg: str) -> dict[str, list[str]]:
    """`frontend public` -> its directives, comments and blank lines left out."""
    found: dict[str, list[str]] = {}
    current = ""
    for raw in cfg.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line:
            continue
        if not line[0].isspace():
            current = line
            found[current] = []
        else:
            found[current].append(" ".join(line.split()))
    return found


def directive(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if line == name or line.startswith(name + " ")]


def test_haproxy_backend_contract() -> None:
    parsed = sections(HAPROXY_CFG.read_text())
    backend, defaults = parsed["backend agents"], parsed["defaults"]
    assert "balance leastconn" in backend
    assert "option httpchk GET /readyz" in backend
    assert "http-check expect status 200" in backend
    [default_server] = directive(backend, "default-server")
    options = default_server.split()
    assert seconds(options[options.index("inter") + 1], "ms") <= 2
    assert options[options.index("fall") + 1] == "2"
    assert options[options.index("rise") + 1] == "2"
    # A worker marked down is draining: its calls in progress must go on.
    assert not any("shutdown-sessions" in line for line in backend)
    assert not directive(backend, "cookie") and not directive(backend, "stick")
    # Webhooks are not idempotent: only retry what a worker refused without answering.
    for retry_on in directive(defaults + backend, "retry-on"):
        assert not {"response-timeout", "all-retryable-errors"} & set(retry_on.split()), retry_on
    [tunnel] = directive(defaults + backend, "timeout tunnel")
    assert seconds(tunnel.split()[-1], "ms") >= 3600
    for name in ("connect", "client", "server"):
        assert directive(defaults, f"timeout {name}"), name
    assert "mode http" in defaults
    assert "nameserver dns 127.0.0.11:53" in parsed["resolvers docker"]


def test_haproxy_marked_blocks() -> None:
    lines = HAPROXY_CFG.read_text().splitlines()
    for name in ("resolvers", "bind", "servers", "stats"):
        assert lines.count(f"# {name}-begin") == 1, name
        assert lines.count(f"# {name}-end") == 1, name
        begin, end = lines.index(f"# {name}-begin"), lines.index(f"# {name}-end")
        assert begin < end, name
    begin, end = lines.index("# servers-begin"), lines.index("# servers-end")
    block = [line for line in lines[begin + 1 : end] if not line.lstrip().startswith("#")]
    assert len(block) == 1 and block[0].split()[0] == "server-template"
    assert "resolvers docker" in block[0] and "init-addr none" in block[0]
    # The resolvers section sits whole in its block (it is dropped as one).
    begin = lines.index("# resolvers-begin")
    assert lines[begin + 1] == "resolvers docker"
    assert sum(line.startswith("resolvers ") for line in lines) == 1


def test_haproxy_config_for_local_processes() -> None:
    text = haproxy_config_for([("127.0.0.1", 18001), ("127.0.0.1", 18002)], bind_port=18080)
    parsed = sections(text)
    assert directive(parsed["backend agents"], "server") == [
        "server a1 127.0.0.1:18001 check",
        "server a2 127.0.0.1:18002 check",
    ]
    assert directive(parsed["frontend public"], "bind") == ["bind 127.0.0.1:18080"]
    directives = " ".join([*parsed, *(line for lines in parsed.values() for line in lines)])
    assert "server-template" not in directives and "resolvers" not in directives
    assert "frontend stats" not in parsed and ":8404" not in directives
    assert not re.search(r"^# \w+-(begin|end)$", text, re.MULTILINE)
    # Everything else is as deployed.
    assert "balance leastconn" in parsed["backend agents"]
    assert "option httpchk GET /readyz" in parsed["backend agents"]
    assert parsed["defaults"] == sections(HAPROXY_CFG.read_text())["defaults"]
    with pytest.raises(ValueError):
        haproxy_config_for([], bind_port=18080)


HAPROXY = shutil.which("haproxy")


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)")
@pytest.mark.parametrize("variant", ["deployed", "local"])
def test_haproxy_accepts_the_config(variant: str, tmp_path: Path) -> None:
    path = HAPROXY_CFG
    if variant == "local":
        path = tmp_path / "haproxy.cfg"
        path.write_text(haproxy_config_for([("127.0.0.1", 18001)], bind_port=18080))
    result = subprocess.run(
        [HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ALERT" not in result.stderr and "WARNING" not in result.stderr, result.stderr
