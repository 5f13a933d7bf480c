"""deploy/ must not drift from the code: no container engine runs the images here, so every compose
file, manifest, Helm values file and the Dockerfile is parsed and checked against the code's own
names — environment variables, search attributes, ports, task queue, namespace, images.

Each check is a function returning a list of problems (empty when code and deploy/ agree), so the
tests can also show a check failing when the code changes and deploy/ does not.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

import worker as worker_module
from domain import search_attributes as sa
from domain.contract import TASK_QUEUE_DEFAULT
from domain.encryption import EncryptionConfigError, KeyRing

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
KUBE = DEPLOY / "kubernetes"
HELM_VALUES = KUBE / "helm" / "temporal-values.yaml"
DOCKERFILE = ROOT / "Dockerfile"
CODE = [ROOT / "worker.py", *(p for d in ("domain", "activities", "workflows", "starter", "localstack")
                               for p in sorted((ROOT / d).rglob("*.py")))]
OUR_IMAGE = "complaints-engine"
WORKER_CMD = ["python", "worker.py"]
ENSURE_SA_CMD = ["python", "worker.py", "--ensure-search-attributes"]
# What the worker must be given in production (the defaults are for `make run` on one machine).
WORKER_REQUIRED = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "COMPLAINTS_TASK_QUEUE", "COMPLAINTS_DATABASE_URL",
                   "COMPLAINTS_METRICS_PORT", "COMPLAINTS_ENCRYPTION_KEYS_FILE"}


# --- what the code says ---------------------------------------------------------------------------

_ENV_READ = [
    re.compile(r"""(?:environ|\benv)\.get\(\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""(?:environ|\benv)\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""),
    re.compile(r"""getenv\(\s*["']([A-Z][A-Z0-9_]+)["']"""),
]


def code_env_names() -> set[str]:
    """Every environment variable the engine's Python sources read."""
    names: set[str] = set()
    for path in CODE:
        text = path.read_text(encoding="utf-8")
        for pattern in _ENV_READ:
            names.update(pattern.findall(text))
    return names


def code_search_attributes() -> dict[str, str]:
    """name -> CLI type, read from domain/search_attributes.py at call time (monkeypatchable)."""
    return {k.name: sa.CLI_TYPE[k.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")] for k in sa.ALL}


def codec_default_port() -> int:
    from starter import codec_server
    parser = argparse.ArgumentParser()
    codec_server.add_parser(parser.add_subparsers())
    return parser.parse_args(["codec-server"]).port


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


# --- what deploy/ says ----------------------------------------------------------------------------

def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def compose() -> dict:
    (doc,) = docs(COMPOSE)
    return doc


def kube_docs() -> list[dict]:
    return [d for p in yaml_files() if p.is_relative_to(KUBE) and p != HELM_VALUES
            and p.name != "kustomization.yaml" for d in docs(p)]


@dataclass
class Container:
    where: str
    image: str
    command: list[str]
    env: dict[str, str]                       # name -> value (value "<secret>" when from a Secret)
    secret_paths: set[str] = field(default_factory=set)   # files mounted from secrets
    raw: dict = field(default_factory=dict)
    pod: dict = field(default_factory=dict)

    @property
    def ours(self) -> bool:
        return self.image.rsplit("/", 1)[-1].split(":")[0] == OUR_IMAGE

    @property
    def is_worker(self) -> bool:
        return self.command == WORKER_CMD


def _exported(strings: list[str]) -> dict[str, str]:
    """Variables a shell wrapper exports, e.g. export COMPLAINTS_DATABASE_URL="$(cat /run/secrets/x)"."""
    found = {}
    for s in strings:
        for name, value in re.findall(r"export\s+([A-Z][A-Z0-9_]*)=(\S+)", s):
            found[name] = value
    return found


def compose_containers() -> Iterator[Container]:
    for name, svc in compose()["services"].items():
        env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
        entry, command = svc.get("entrypoint") or [], svc.get("command") or []
        entry = [entry] if isinstance(entry, str) else entry
        command = [command] if isinstance(command, str) else command
        env.update(_exported(entry + command))
        secrets = {f"/run/secrets/{s}" for s in svc.get("secrets") or []}
        yield Container(f"compose service {name}", svc["image"], command, env, secrets, svc)


def kube_containers() -> Iterator[Container]:
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in kube_docs()}
    for d in kube_docs():
        if d["kind"] not in ("Deployment", "Job"):
            continue
        pod = d["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            env: dict[str, str] = {}
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    env.update(by_kind[("ConfigMap", src["configMapRef"]["name"])]["data"])
                if "secretRef" in src:
                    env.update(dict.fromkeys(by_kind[("Secret", src["secretRef"]["name"])]["stringData"], "<secret>"))
            for e in c.get("env", []):
                env[e["name"]] = e.get("value", "<secret>" if "secretKeyRef" in e.get("valueFrom", {}) else "?")
            secret_paths = set()
            for m in c.get("volumeMounts", []):
                vol = volumes[m["name"]]
                if "secret" in vol:
                    for item in vol["secret"].get("items", []):
                        secret_paths.add(f"{m['mountPath'].rstrip('/')}/{item['path']}")
            yield Container(f"{d['kind']} {d['metadata']['name']}/{c['name']}", c["image"],
                            list(c.get("command", [])) + list(c.get("args", [])), env, secret_paths, c, pod)


def containers() -> list[Container]:
    return [*compose_containers(), *kube_containers()]


def helm_values() -> dict:
    (doc,) = docs(HELM_VALUES)
    return doc


def helm_web_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in helm_values()["web"]["additionalEnv"]}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, args = line.partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def deploy_texts() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in sorted(DEPLOY.rglob("*"))
            if p.is_file() and p.suffix in (".yml", ".yaml", ".md", ".sh", ".sql")}


_SA_CREATE = re.compile(r"search-attribute create((?:[^\n]*\\\n)*[^\n]*)")


def deploy_search_attribute_lists() -> list[tuple[str, dict[str, str]]]:
    """Every `temporal operator search-attribute create --name X --type T ...` written in deploy/."""
    found = []
    for path, text in deploy_texts().items():
        for m in _SA_CREATE.finditer(text):
            pairs = dict(re.findall(r"--name\s+(\w+)\s+--type\s+(\w+)", m.group(1)))
            if pairs:
                found.append((str(path.relative_to(ROOT)), pairs))
    return found


# --- the checks -----------------------------------------------------------------------------------

def check_env_names() -> list[str]:
    read = code_env_names()
    return [f"{c.where} sets {name}, which no code reads" for c in containers() if c.ours
            for name in sorted(c.env) if name not in read]


def check_worker_settings() -> list[str]:
    problems = []
    workers = [c for c in containers() if c.ours and c.is_worker]
    if len(workers) < 2:
        problems.append(f"expected a worker in compose and in kubernetes, found {[c.where for c in workers]}")
    for c in workers:
        for name in sorted(WORKER_REQUIRED - set(c.env)):
            problems.append(f"{c.where} lacks {name}")
        if c.env.get("COMPLAINTS_ENCRYPTION", "").lower() == "off":
            problems.append(f"{c.where} turns encryption off")
    for c in containers():
        if not c.ours:
            continue
        keys = c.env.get("COMPLAINTS_ENCRYPTION_KEYS_FILE")
        if keys is not None and keys not in c.secret_paths:
            problems.append(f"{c.where}: COMPLAINTS_ENCRYPTION_KEYS_FILE={keys} is not a mounted secret "
                            f"({sorted(c.secret_paths)})")
        if "COMPLAINTS_ENCRYPTION_KEY" in c.env:
            problems.append(f"{c.where}: a key in the environment; use COMPLAINTS_ENCRYPTION_KEYS_FILE")
        url = c.env.get("COMPLAINTS_DATABASE_URL")
        if url is not None and "://" in url and "@" in url:
            problems.append(f"{c.where}: COMPLAINTS_DATABASE_URL written in clear; take it from a secret")
    return problems


def memory_bytes(value: str, compose: bool = False) -> int:
    """A memory quantity: Kubernetes' 384Mi, 1Gi (binary) or 500M, 1G (decimal); Compose's 1g, 512m (binary)."""
    m = re.fullmatch(r"([0-9]+)\s*([kKmMgG]i?)?[bB]?", str(value).strip())
    if m is None:
        raise ValueError(f"memory quantity {value!r}")
    unit = m.group(2) or ""
    power = {"": 0, "k": 1, "m": 2, "g": 3}[unit[:1].lower()]
    binary = compose or unit.endswith("i")
    if not compose and unit[:1] in ("m", "g"):  # Kubernetes: lower-case m is milli, g is not a unit
        raise ValueError(f"memory quantity {value!r}: write Mi or Gi")
    return int(m.group(1)) * (1024 if binary else 1000) ** power


def memory_limit(c: Container) -> str | None:
    limits = (c.raw.get("deploy", {}).get("resources", {}) if c.where.startswith("compose")
              else c.raw.get("resources", {})).get("limits", {})
    return limits.get("memory")


def check_worker_memory() -> list[str]:
    """The worker's cache must fit its memory limit, at the per-case cost `make bench` measured."""
    problems = []
    for c in (c for c in containers() if c.ours and c.is_worker):
        limit = memory_limit(c)
        if limit is None:
            problems.append(f"{c.where}: no memory limit")
            continue
        cached = int(c.env.get("COMPLAINTS_WORKER_CACHED_CASES", worker_module.CACHED_CASES_DEFAULT))
        needed_mb = worker_module.IDLE_RSS_MB + cached * worker_module.KB_PER_CACHED_CASE / 1000
        # A quarter of the limit is kept for activity and replay work on top of the cache.
        if needed_mb * 1000**2 > 0.75 * memory_bytes(limit, compose=c.where.startswith("compose")):
            problems.append(f"{c.where}: {cached} cached cases need about {needed_mb:.0f} MB, more than 3/4 of "
                            f"its {limit} limit; lower COMPLAINTS_WORKER_CACHED_CASES or raise the limit")
    return problems


def check_task_queue_and_namespace() -> list[str]:
    problems = []
    namespaces = set()
    for c in containers():
        if c.ours:
            if c.env.get("COMPLAINTS_TASK_QUEUE", TASK_QUEUE_DEFAULT) != TASK_QUEUE_DEFAULT:
                problems.append(f"{c.where}: task queue {c.env['COMPLAINTS_TASK_QUEUE']} != {TASK_QUEUE_DEFAULT}")
            namespaces.add(c.env.get("TEMPORAL_NAMESPACE"))
    if len(namespaces) != 1:
        problems.append(f"our containers disagree on TEMPORAL_NAMESPACE: {namespaces}")
    ns = next(iter(namespaces))
    created = compose()["services"]["temporal-namespace"]["command"][0]
    if "namespace create" not in created or not created.rstrip().endswith(f" {ns}"):
        problems.append(f"compose's temporal-namespace does not create {ns!r}")
    helm_ns = [n["name"] for n in helm_values()["server"]["config"]["namespaces"]["namespace"]]
    if ns not in helm_ns:
        problems.append(f"the Helm values create {helm_ns}, not {ns!r}")
    if helm_web_env().get("TEMPORAL_DEFAULT_NAMESPACE") != ns:
        problems.append("the Helm UI's default namespace differs")
    if compose()["services"]["temporal-ui"]["environment"].get("TEMPORAL_DEFAULT_NAMESPACE") != ns:
        problems.append("the compose UI's default namespace differs")
    return problems


def check_search_attributes() -> list[str]:
    """The attributes deploy/ registers are exactly the code's: the one-shots run the code's own list
    (worker.py --ensure-search-attributes), and any list written out in deploy/ must equal it."""
    problems = []
    expected = code_search_attributes()
    runners = [c for c in containers() if c.ours and c.command == ENSURE_SA_CMD]
    wheres = {c.where.split()[0] for c in runners}
    if wheres != {"compose", "Job"}:
        problems.append(f"ensure-search-attributes must run in compose and as a Job, found {sorted(wheres)}")
    lists = deploy_search_attribute_lists()
    if not lists:
        problems.append("no `temporal operator search-attribute create` list in deploy/ (the runbook has one)")
    for where, pairs in lists:
        if pairs != expected:
            missing = sorted(set(expected.items()) - set(pairs.items()))
            extra = sorted(set(pairs.items()) - set(expected.items()))
            problems.append(f"{where}: search attributes differ from domain/search_attributes.py: "
                            f"missing {missing}, not in code {extra}")
    return problems


def _compose_healthcheck_port(svc: dict) -> set[int]:
    test = " ".join(svc["healthcheck"]["test"])
    return {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", test)}


def check_ports() -> list[str]:
    problems = []
    codec = codec_default_port()
    services = compose()["services"]
    # Metrics: the worker's healthcheck and probes use COMPLAINTS_METRICS_PORT and the SDK's port + 1.
    for c in containers():
        if not (c.ours and c.is_worker):
            continue
        port = int(c.env["COMPLAINTS_METRICS_PORT"])
        if c.where.startswith("compose"):
            if _compose_healthcheck_port(c.raw) != {port}:
                problems.append(f"{c.where}: healthcheck is not on the metrics port {port}")
            continue
        ports = {p["name"]: p["containerPort"] for p in c.raw["ports"]}
        if ports != {"metrics": port, "sdk-metrics": port + 1}:
            problems.append(f"{c.where}: ports {ports} != metrics {port}, sdk-metrics {port + 1}")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            target = c.raw[probe]["httpGet"]["port"]
            if ports.get(target, target) not in (port, port + 1):
                problems.append(f"{c.where}: {probe} on {target}, which the worker does not serve")
    for d in kube_docs():
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "complaints-worker":
            ann = d["spec"]["template"]["metadata"]["annotations"]
            cm = next(x for x in kube_docs() if x["kind"] == "ConfigMap")
            if ann["prometheus.io/port"] != cm["data"]["COMPLAINTS_METRICS_PORT"]:
                problems.append("the worker's prometheus.io/port annotation is not COMPLAINTS_METRICS_PORT")
    # The codec server: the code's default port, wherever it is served, probed, published and called.
    for c in containers():
        if not (c.ours and c.command[:4] == ["python", "-m", "starter", "codec-server"]):
            continue
        served = int(c.command[c.command.index("--port") + 1]) if "--port" in c.command else \
            int(c.env.get("COMPLAINTS_CODEC_PORT", codec))
        if served != codec:
            problems.append(f"{c.where}: codec server on {served}, the code's default is {codec}")
        if "--token-file" not in c.command or c.command[c.command.index("--token-file") + 1] not in c.secret_paths:
            problems.append(f"{c.where}: the codec token must come from a mounted secret (--token-file)")
        if c.where.startswith("compose"):
            if _compose_healthcheck_port(c.raw) != {codec}:
                problems.append(f"{c.where}: healthcheck not on {codec}")
        elif {p["containerPort"] for p in c.raw["ports"]} != {codec}:
            problems.append(f"{c.where}: containerPort is not {codec}")
    published = {int(p.rsplit(":", 2)[-2]): int(p.rsplit(":", 1)[-1]) for p in services["codec-server"]["ports"]}
    endpoint = services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    default_endpoint = re.sub(r"\$\{[A-Z_]+:-(.*)\}", r"\1", endpoint)
    if published.get(urlsplit(default_endpoint).port) != codec:
        problems.append(f"the compose UI calls {default_endpoint}, which is not the codec server's port {codec}")
    svc = next(d for d in kube_docs() if d["kind"] == "Service" and d["metadata"]["name"] == "complaints-codec-server")
    if svc["spec"]["ports"][0]["port"] != codec:
        problems.append("the codec Service's port is not the codec server's")
    # Both UIs are wired to a codec server and send its cookie.
    ui_envs = {"compose": services["temporal-ui"]["environment"], "helm": helm_web_env()}
    for where, env in ui_envs.items():
        if not env.get("TEMPORAL_CODEC_ENDPOINT") or str(env.get("TEMPORAL_CODEC_INCLUDE_CREDENTIALS")) != "true":
            problems.append(f"the {where} UI is not wired to the codec server with credentials")
    return problems


def _images() -> Iterator[tuple[str, str]]:
    for name, svc in compose()["services"].items():
        yield f"compose {name}", svc["image"]
    for c in kube_containers():
        yield c.where, c.image
    values = helm_values()
    for part in ("server", "admintools", "web"):
        image = values[part]["image"]
        yield f"helm {part}", f"{image['repository']}:{image['tag']}"
    for instr, args in dockerfile():
        if instr == "FROM":
            yield "Dockerfile", args.split()[0]


def check_images() -> list[str]:
    problems = []
    version = project_version()
    for where, image in _images():
        name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
        if not tag or tag == "latest":
            problems.append(f"{where}: image {image} is not pinned")
        elif name.rsplit("/", 1)[-1] == OUR_IMAGE and tag != version:
            problems.append(f"{where}: {image} is not the project's version {version}")
    # Temporal's own parts run one release together.
    server = {t for w, i in _images() if "temporalio/server" in i for t in [i.rsplit(":", 1)[1]]}
    tools = {i.rsplit(":", 1)[1].split("-")[0] for w, i in _images() if "temporalio/admin-tools" in i}
    if len(server) != 1 or server != tools:
        problems.append(f"Temporal server {server} and admin-tools {tools} versions differ")
    return problems


def check_dockerfile() -> list[str]:
    problems = []
    instrs = dockerfile()
    get = lambda k: [a for i, a in instrs if i == k]  # noqa: E731
    if get("FROM") != ["python:3.11-slim"]:
        problems.append(f"FROM {get('FROM')}, expected python:3.11-slim")
    user = (get("USER") or ["root"])[-1].split(":")[0]
    if user in ("root", "0"):
        problems.append("the image runs as root")
    if get("CMD") != ['["python", "worker.py"]']:
        problems.append(f"CMD {get('CMD')}")
    if get("STOPSIGNAL") != ["SIGTERM"]:
        problems.append("STOPSIGNAL is not SIGTERM")
    installs = [a for a in get("RUN") if "pip install" in a]
    if not installs or any("[" in a or " -e " in a for a in installs):
        problems.append(f"pip install of the project without extras expected: {installs}")
    copied = {a.split()[0].rstrip("/") for a in get("COPY")}
    for needed in ("domain", "activities", "workflows", "starter", "policies", "worker.py", "pyproject.toml"):
        if needed not in copied:
            problems.append(f"the image does not copy {needed}")
    # domain/policy.py looks for ../policies next to the package: the image must keep that layout.
    from domain import policy
    if policy.POLICY_DIR != ROOT / "policies":
        problems.append(f"domain/policy.py's POLICY_DIR moved ({policy.POLICY_DIR}); check the image's layout")
    return problems


def check_graceful_shutdown() -> list[str]:
    from worker import GRACEFUL_SHUTDOWN
    from workflows.complaint import ACTIVITY_TIMEOUT
    problems = []
    if GRACEFUL_SHUTDOWN < ACTIVITY_TIMEOUT:
        problems.append(f"worker.py: GRACEFUL_SHUTDOWN {GRACEFUL_SHUTDOWN} is shorter than an activity")
    # The orchestrator must wait out the worker's own shutdown window, or activities die mid-write.
    need = GRACEFUL_SHUTDOWN.total_seconds()
    for c in containers():
        if not (c.ours and c.is_worker):
            continue
        if c.where.startswith("compose"):
            grace = int(str(c.raw["stop_grace_period"]).rstrip("s"))
            if c.raw.get("stop_signal", "SIGTERM") != "SIGTERM" or grace <= need:
                problems.append(f"{c.where}: stop_grace_period {grace}s does not outlast the worker's shutdown ({need}s)")
            continue
        pre_stop = c.raw["lifecycle"]["preStop"]["exec"]["command"]
        sleep = float(pre_stop[1]) if pre_stop[0] == "sleep" else 0.0
        grace = c.pod["terminationGracePeriodSeconds"]
        if grace <= need + sleep:
            problems.append(f"{c.where}: terminationGracePeriodSeconds {grace} <= shutdown {need}s + preStop {sleep}s")
        if not c.raw["resources"].get("requests") or not c.raw["resources"].get("limits"):
            problems.append(f"{c.where}: resource requests and limits expected")
    return problems


def check_secrets_are_placeholders() -> list[str]:
    problems = []
    for d in kube_docs():
        if d["kind"] != "Secret":
            continue
        data = d.get("stringData", {})
        if d.get("data"):
            problems.append(f"Secret {d['metadata']['name']}: base64 `data` hides what is committed; use placeholders")
        try:
            KeyRing.from_json(data["encryption-keys.json"], "placeholder")
            problems.append("the committed Secret holds a usable encryption key")
        except EncryptionConfigError:
            pass
        for key, value in data.items():
            if "REPLACE-ME" not in value:
                problems.append(f"Secret {d['metadata']['name']}/{key} is not a placeholder")
    return problems


def check_kustomization() -> list[str]:
    (kust,) = docs(KUBE / "kustomization.yaml")
    listed = set(kust["resources"])
    present = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    return [f"kustomization.yaml: {sorted(present ^ listed)} listed or present but not both"] if listed != present else []


# --- the tests ------------------------------------------------------------------------------------

def test_every_yaml_file_parses_and_has_documents() -> None:
    files = yaml_files()
    assert COMPOSE in files and HELM_VALUES in files and len(files) >= 10
    for path in files:
        assert docs(path), f"{path} holds no YAML document"
    for d in kube_docs():
        assert {"apiVersion", "kind", "metadata"} <= set(d), d


@pytest.mark.parametrize("check", [
    check_env_names, check_worker_settings, check_task_queue_and_namespace, check_search_attributes,
    check_ports, check_images, check_dockerfile, check_graceful_shutdown, check_secrets_are_placeholders,
    check_kustomization, check_worker_memory,
], ids=lambda f: f.__name__)
def test_deploy_matches_the_code(check) -> None:
    assert check() == []


def test_code_env_names_are_found() -> None:
    # The scanner sees what the code reads; if this fails, the scanner (not deploy/) needs fixing.
    assert {"TEMPORAL_ADDRESS", "COMPLAINTS_DATABASE_URL", "COMPLAINTS_METRICS_PORT", "COMPLAINTS_LOG_LEVEL",
            "COMPLAINTS_ENCRYPTION_KEYS_FILE", "COMPLAINTS_CODEC_TOKEN", "COMPLAINTS_CODEC_PORT"} <= code_env_names()


def test_check_fails_when_a_search_attribute_is_renamed_in_code(monkeypatch) -> None:
    """The must-show: rename ComplaintStage in the code's list, leave deploy/ alone, the check fails."""
    from temporalio.common import SearchAttributeKey

    assert check_search_attributes() == []
    renamed = [SearchAttributeKey.for_keyword("ComplaintPhase") if k.name == "ComplaintStage" else k for k in sa.ALL]
    monkeypatch.setattr(sa, "ALL", renamed)
    problems = check_search_attributes()
    assert problems, "renaming a search attribute in code went unnoticed"
    assert any("ComplaintPhase" in p and "ComplaintStage" in p for p in problems), problems
    print("\n".join(problems))


def test_check_fails_when_a_search_attribute_changes_type_in_code(monkeypatch) -> None:
    from temporalio.common import SearchAttributeKey

    changed = [SearchAttributeKey.for_text("Nation") if k.name == "Nation" else k for k in sa.ALL]
    monkeypatch.setattr(sa, "ALL", changed)
    assert any("('Nation', 'Text')" in p for p in check_search_attributes())


def test_check_fails_when_the_code_stops_reading_a_variable(monkeypatch) -> None:
    names = code_env_names() - {"COMPLAINTS_METRICS_PORT"}
    monkeypatch.setitem(globals(), "code_env_names", lambda: names)
    assert any("COMPLAINTS_METRICS_PORT" in p for p in check_env_names())


def test_check_fails_when_the_task_queue_changes_in_code(monkeypatch) -> None:
    monkeypatch.setitem(globals(), "TASK_QUEUE_DEFAULT", "complaints-v2")
    assert any("complaints-v2" in p for p in check_task_queue_and_namespace())


def test_memory_quantities_are_read_as_kubernetes_and_compose_write_them() -> None:
    assert memory_bytes("1Gi") == 1024**3 and memory_bytes("384Mi") == 384 * 1024**2
    assert memory_bytes("500M") == 500 * 1000**2
    assert memory_bytes("1g", compose=True) == 1024**3 and memory_bytes("512m", compose=True) == 512 * 1024**2
    for wrong in ("lots", "512m"):  # in Kubernetes 512m is half a byte
        with pytest.raises(ValueError):
            memory_bytes(wrong)


def test_check_fails_when_the_worker_cache_outgrows_its_memory_limit(monkeypatch) -> None:
    # The cache the code used to default to (10,000 cases, about 4 GB) in a 1 GiB pod: killed for memory.
    monkeypatch.setattr(worker_module, "CACHED_CASES_DEFAULT", 10_000)
    real = containers()
    for c in real:
        c.env.pop("COMPLAINTS_WORKER_CACHED_CASES", None)
    monkeypatch.setitem(globals(), "containers", lambda: real)
    problems = check_worker_memory()
    assert len(problems) == 2 and all("10000 cached cases" in p for p in problems), problems
