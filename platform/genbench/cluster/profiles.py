"""Cluster files: genbench profiles, Ray cluster-launcher files and KubeRay manifests, loaded and validated."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.config import finite_number
from genbench.errors import ConfigError, suggest
from genbench.yamlfile import YamlDoc, load_yaml

PROFILE_KEYS = (
    "name",
    "address",
    "storage",
    "gpu_type",
    "gpus_per_node",
    "cpus_per_node",
    "max_nodes",
    "price_per_node_hour",
    "trial_resources",
    "python",
    "pip",
    "env",
    "credentials_env",
)
KUBERAY_KINDS = ("RayCluster", "RayJob")
COMPANION = "genbench.yaml"  # the profile of the KubeRay manifests beside it


@dataclass(frozen=True)
class Profile:
    """Where a study runs and what it costs: the `genbench:` section of a cluster file."""

    name: str
    source: str
    storage: str  # results root: a path shared by all nodes, or a pyarrow.fs URI (s3://, gs://)
    address: str = ""  # the Jobs API (Ray dashboard) URL; empty: a private local Ray
    gpu_type: str = ""
    gpus_per_node: int = 0
    cpus_per_node: int = 0  # CPUs of a worker node: a trial pays its share of the node (0: the whole node)
    max_nodes: int = 0  # worker nodes the autoscaler may add (a launcher file's max_workers); 0: a fixed cluster
    price_per_node_hour: float = 0.0  # USD, for cost.usd
    trial_resources: dict[str, Any] = field(default_factory=dict)  # a study's `resources:` when it sets none
    python: str = "python"  # the interpreter on the cluster
    pip: list[str] = field(default_factory=list)  # extra requirements installed per job (runtime_env pip)
    env: dict[str, str] = field(default_factory=dict)  # extra environment variables of the job: never secrets
    credentials_env: list[str] = field(default_factory=list)  # variables the cluster's nodes set (keys); names only

    def results_uri(self, study: str, dry_run: bool) -> str:
        """`<storage>/<study>[-dry-run]`."""
        return f"{self.storage.rstrip('/')}/{study}{'-dry-run' if dry_run else ''}"

    def record(self) -> dict[str, Any]:
        """The cluster as study.yaml records it (and as a submitted job carries it: see from_record)."""
        return {
            "name": self.name,
            "gpu_type": self.gpu_type or None,
            "gpus_per_node": self.gpus_per_node,
            "cpus_per_node": self.cpus_per_node,
            "max_nodes": self.max_nodes,
            "price_per_node_hour": self.price_per_node_hour,
            "trial_resources": dict(self.trial_resources),
            "credentials_env": list(self.credentials_env),
            "source": Path(self.source).name,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Profile:
        """The profile a job carries (record()), on the cluster: what the sweep there needs of it."""
        return cls(
            name=str(record.get("name") or "ray-cluster"),
            source=str(record.get("source") or ""),
            storage="",
            gpu_type=record.get("gpu_type") or "",
            gpus_per_node=int(record.get("gpus_per_node") or 0),
            cpus_per_node=int(record.get("cpus_per_node") or 0),
            max_nodes=int(record.get("max_nodes") or 0),
            price_per_node_hour=float(record.get("price_per_node_hour") or 0.0),
            trial_resources=dict(record.get("trial_resources") or {}),
            credentials_env=[str(n) for n in record.get("credentials_env") or []],
        )

    def node_share(self, cpus: float, gpus: float) -> float:
        """The part of a node a run holding `cpus` CPUs and `gpus` GPUs pays for: its GPU share on GPU nodes, else
        its CPU share (the whole node when the profile does not say the node's size)."""
        if gpus > 0 and self.gpus_per_node > 0:
            return min(1.0, gpus / self.gpus_per_node)
        return min(1.0, cpus / self.cpus_per_node) if self.cpus_per_node > 0 else 1.0

    def usd(self, wall_s: float, cpus: float, gpus: float) -> float:
        """cost.usd of a run: its hours x the price per node-hour x its share of the node (node_share)."""
        return wall_s / 3600 * self.price_per_node_hour * self.node_share(cpus, gpus)


def cluster_kind(doc: YamlDoc) -> str:
    """'kuberay' (apiVersion), 'launcher' (provider) or 'profile' (a genbench: section only)."""
    if "apiVersion" in doc.data:
        return "kuberay"
    if "provider" in doc.data or "cluster_name" in doc.data:
        return "launcher"
    return "profile"


def load_profile(path: str | Path) -> Profile:
    """The genbench profile of a cluster file (or of the genbench.yaml beside a KubeRay manifest)."""
    doc = load_yaml(path)
    kind = cluster_kind(doc)
    validate_doc(doc, kind)
    if kind == "kuberay":
        companion = Path(doc.path).with_name(COMPANION)
        if not companion.exists():
            raise ConfigError(
                "a KubeRay manifest has no genbench profile",
                source=doc.path,
                key="genbench",
                fix=f"write one in {companion} (see clusters/kuberay/{COMPANION})",
            )
        return load_profile(companion)
    return _profile(doc, "metadata.genbench" if kind == "launcher" else "genbench")


def _launcher_max_nodes(doc: YamlDoc) -> int:
    """A launcher file's worker limit: its max_workers, else the sum of its worker node types' (0 for profiles)."""
    if "max_workers" in doc.data:
        return int(doc.data["max_workers"])
    types = doc.data.get("available_node_types") or {}
    head = doc.data.get("head_node_type")
    return sum(int(t.get("max_workers", 0)) for name, t in types.items() if name != head and isinstance(t, dict))


def validate_cluster_file(path: str | Path) -> str:
    """Validate any cluster file; returns a one-line description, raises ConfigError naming file:line and key."""
    doc = load_yaml(path)
    kind = cluster_kind(doc)
    validate_doc(doc, kind)
    if kind == "kuberay":
        workers = doc.data.get("spec", {})
        return f"KubeRay {doc.data['kind']} '{doc.data.get('metadata', {}).get('name', '?')}'" + (
            f", {_gpu_groups(workers)} GPU worker group(s)"
        )
    profile = _profile(doc, "metadata.genbench" if kind == "launcher" else "genbench")
    what = "Ray cluster-launcher file" if kind == "launcher" else "cluster profile"
    gpu = f", {profile.gpus_per_node} x {profile.gpu_type} per node" if profile.gpu_type else ""
    return f"{what} '{profile.name}', results in {profile.storage}{gpu}"


def validate_doc(doc: YamlDoc, kind: str) -> None:
    if kind == "launcher":
        validate_launcher(doc)
    elif kind == "kuberay":
        validate_kuberay(doc)


def _section(doc: YamlDoc, dotted: str) -> dict[str, Any]:
    node: Any = doc.data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise ConfigError(
            "missing or not a mapping",
            source=doc.where(dotted),
            key=dotted,
            fix="add the genbench profile: name, storage, price_per_node_hour, ... (see clusters/)",
        )
    return node


def _profile(doc: YamlDoc, prefix: str) -> Profile:
    sec = _section(doc, prefix)
    for key in sec:
        if key not in PROFILE_KEYS:
            raise ConfigError(
                "unknown profile key",
                source=doc.where(f"{prefix}.{key}"),
                key=f"{prefix}.{key}",
                fix=suggest(str(key), PROFILE_KEYS),
            )
    get = _getter(doc, prefix, sec)
    storage = get("storage", str, None)
    if storage is None:
        raise ConfigError(
            "missing",
            source=doc.where(prefix),
            key=f"{prefix}.storage",
            fix="a path every node shares, or a URI such as s3://bucket/genbench",
        )
    pip, env = [str(p) for p in get("pip", list, [])], {str(k): str(v) for k, v in get("env", dict, {}).items()}
    address = get("address", str, "")
    _no_secrets(
        doc, prefix, {"storage": storage, "address": address, **{f"pip[{i}]": p for i, p in enumerate(pip)}}, env
    )
    if "?" in storage:
        raise ConfigError(
            "a URI query cannot reach Ray Tune's storage",
            source=doc.where(f"{prefix}.storage"),
            key=f"{prefix}.storage",
            fix="set the endpoint in env:, e.g. AWS_ENDPOINT_URL_S3",
        )
    if address and not address.startswith(("http://", "https://")):
        raise ConfigError(
            f"{address!r} is not a Jobs API URL",
            source=doc.where(f"{prefix}.address"),
            key=f"{prefix}.address",
            fix="the Ray dashboard URL, e.g. http://127.0.0.1:8265",
        )
    credentials = _credentials_env(doc, prefix, get("credentials_env", list, []), env)
    return Profile(
        name=get("name", str, Path(doc.path).stem),
        source=doc.path,
        storage=storage,
        address=address,
        gpu_type=get("gpu_type", str, ""),
        gpus_per_node=get("gpus_per_node", int, 0),
        cpus_per_node=get("cpus_per_node", int, 0),
        max_nodes=get("max_nodes", int, _launcher_max_nodes(doc) if prefix.startswith("metadata") else 0),
        price_per_node_hour=float(get("price_per_node_hour", (int, float), 0.0)),
        trial_resources=_resources(doc, prefix, get("trial_resources", dict, {})),
        python=get("python", str, "python"),
        pip=pip,
        env=env,
        credentials_env=credentials,
    )


SECRET_FIX = (
    "give the cluster's nodes the credential instead (an instance role or workload identity, or the "
    "variable in the environment `ray start` runs with)"
)


def _no_secrets(doc: YamlDoc, prefix: str, values: dict[str, str], env: dict[str, str]) -> None:
    """Nothing the job's record would show (`ray job list`, the dashboard) may be a credential: refused here."""
    from genbench.cluster.secrets import secret_name, secret_value, uri_credentials

    for key, value in values.items():
        if found := uri_credentials(value):
            raise ConfigError(
                f"credentials in a URI ({found}), which the job's record would show",
                source=doc.where(f"{prefix}.{key.split('[')[0]}"),
                key=f"{prefix}.{key}",
                fix=f"remove them; {SECRET_FIX}",
            )
    for name, value in env.items():
        found = secret_value(value)
        why = "its name says it holds a credential" if secret_name(name) else found and f"its value is {found}"
        if why:
            raise ConfigError(
                f"{why}, and env: values go into the job's runtime environment, which `ray job list` "
                "and the dashboard show",
                source=doc.where(f"{prefix}.env.{name}"),
                key=f"{prefix}.env.{name}",
                fix=f"remove it; {SECRET_FIX}, and list its name in credentials_env: [{name}]",
            )


def _credentials_env(doc: YamlDoc, prefix: str, names: list[Any], env: dict[str, str]) -> list[str]:
    """credentials_env: names of variables the cluster's nodes set (the job checks them); never their values."""
    key = f"{prefix}.credentials_env"
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(
                f"expected environment variable names, got {name!r}",
                source=doc.where(key),
                key=key,
                fix="e.g. credentials_env: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]",
            )
        if name in env:
            raise ConfigError(
                f"{name} is both a credential the nodes set and a value shipped in env:",
                source=doc.where(f"{prefix}.env.{name}"),
                key=f"{prefix}.env.{name}",
                fix="remove it from env:; the nodes' own value is used",
            )
    return list(names)


def _getter(doc: YamlDoc, prefix: str, sec: dict[str, Any]) -> Any:
    def get(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = sec.get(key, default)
        bad = (
            not isinstance(value, kind)
            or isinstance(value, bool)
            or (isinstance(value, (int, float)) and not (finite_number(value) and value >= 0))
        )  # NaN passes `< 0`
        if value is not default and bad:
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(
                f"expected a finite, non-negative {names}, got {value!r}",
                source=doc.where(f"{prefix}.{key}"),
                key=f"{prefix}.{key}",
                fix="see clusters/",
            )
        return value

    return get


def _resources(doc: YamlDoc, prefix: str, res: dict[str, Any]) -> dict[str, Any]:
    """The keys given, checked as a study's `resources:` would be (the job appends them to the study)."""
    from genbench.sweep.spec import parse_resources

    parse_resources(doc, f"{prefix}.trial_resources", res)
    return dict(res)


def _key_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_launcher(doc: YamlDoc) -> None:
    """Against the cluster-config JSON schema inside the ray package, then Ray's own consistency checks."""
    import jsonschema
    import ray.autoscaler

    schema_path = Path(ray.autoscaler.__file__).with_name("ray-schema.json")
    schema = json.loads(schema_path.read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(schema).iter_errors(doc.data))
    if error is not None:
        key = _key_path(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            key = ".".join([k for k in (key, *extra[:1]) if k])
        raise ConfigError(
            f"{error.message} (Ray's {schema_path.name})",
            source=doc.where(key) if key else doc.path,
            key=key,
            fix="see `ray up` docs and clusters/aws-gpu.yaml",
        )
    types = doc.data.get("available_node_types", {})
    if types and doc.data.get("head_node_type") not in types:
        raise ConfigError(
            "must name one of available_node_types",
            source=doc.where("head_node_type"),
            key="head_node_type",
            fix=suggest(str(doc.data.get("head_node_type")), types),
        )
    _ray_checks(doc)


def _ray_checks(doc: YamlDoc) -> None:
    """What `ray up` checks after filling in the provider's defaults (worker counts, node types)."""
    import copy
    import logging

    from ray.autoscaler._private.util import prepare_config, validate_config

    logging.getLogger("ray.autoscaler._private.util").setLevel(logging.WARNING)  # its notes on filled defaults
    try:
        validate_config(prepare_config(copy.deepcopy(doc.data)))
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ConfigError(
            f"Ray refuses the cluster config: {exc}", source=doc.path, fix="see clusters/aws-gpu.yaml"
        ) from None


def validate_kuberay(doc: YamlDoc) -> None:
    """Structural checks of a ray.io/v1 RayCluster or RayJob: head group, worker groups, GPU limits, entrypoint."""
    data = doc.data
    if data.get("apiVersion") != "ray.io/v1":
        raise ConfigError(
            f"expected ray.io/v1, got {data.get('apiVersion')!r}",
            source=doc.where("apiVersion"),
            key="apiVersion",
            fix="KubeRay >= 1.0 manifests use apiVersion: ray.io/v1",
        )
    if data.get("kind") not in KUBERAY_KINDS:
        raise ConfigError(
            f"expected one of {', '.join(KUBERAY_KINDS)}",
            source=doc.where("kind"),
            key="kind",
            fix=suggest(str(data.get("kind")), KUBERAY_KINDS),
        )
    spec_key = "spec" if data["kind"] == "RayCluster" else "spec.rayClusterSpec"
    spec = _section(doc, spec_key)
    for key in ("headGroupSpec", "workerGroupSpecs"):
        if key not in spec:
            raise ConfigError(
                "missing",
                source=doc.where(spec_key),
                key=f"{spec_key}.{key}",
                fix="see clusters/kuberay/raycluster.yaml",
            )
    _check_groups(doc, spec_key, spec["workerGroupSpecs"])
    if data["kind"] == "RayJob" and "genbench" not in str(data["spec"].get("entrypoint", "")):
        raise ConfigError(
            "the entrypoint does not run genbench",
            source=doc.where("spec.entrypoint"),
            key="spec.entrypoint",
            fix="e.g. python -m genbench.cluster.remote gan_stability --out s3://BUCKET/PREFIX",
        )


def _check_groups(doc: YamlDoc, spec_key: str, groups: Any) -> None:
    if not isinstance(groups, list) or not groups:
        raise ConfigError(
            "expected a list of worker groups",
            source=doc.where(f"{spec_key}.workerGroupSpecs"),
            key=f"{spec_key}.workerGroupSpecs",
        )
    for i, group in enumerate(groups):
        key = f"{spec_key}.workerGroupSpecs[{i}]"
        for need in ("groupName", "replicas", "minReplicas", "maxReplicas", "template"):
            if not isinstance(group, dict) or need not in group:
                raise ConfigError(
                    "missing", source=doc.where(key), key=f"{key}.{need}", fix="see clusters/kuberay/raycluster.yaml"
                )
        counts = [group[k] for k in ("minReplicas", "replicas", "maxReplicas")]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise ConfigError(
                f"replica counts must be integers >= 0, got {counts}",
                source=doc.where(f"{key}.replicas"),
                key=f"{key}.replicas",
                fix="e.g. minReplicas: 0, replicas: 1, maxReplicas: 4",
            )
        if not group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]:
            raise ConfigError(
                "needs minReplicas <= replicas <= maxReplicas",
                source=doc.where(f"{key}.replicas"),
                key=f"{key}.replicas",
            )


def _gpu_groups(spec: dict[str, Any]) -> int:
    groups = spec.get("workerGroupSpecs") or spec.get("rayClusterSpec", {}).get("workerGroupSpecs", [])
    return sum("nvidia.com/gpu" in json.dumps(g) for g in groups)
