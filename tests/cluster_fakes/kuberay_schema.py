"""JSON schemas of the KubeRay v1 fields our manifests use (RayService, RayJob).

kubernetes-validate ships only the built-in kinds, so CRDs are checked against these schemas,
written from the KubeRay v1 CRDs (ray.io/v1, operator 1.1+). Unknown fields are rejected at every
level written here; the pod templates inside are validated separately as core PodTemplateSpecs.
"""

from __future__ import annotations

from typing import Any

_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_TEMPLATE = {"type": "object"}  # validated as a core PodTemplate by the test

_HEAD = {
    "type": "object",
    "additionalProperties": False,
    "required": ["template"],
    "properties": {
        "rayStartParams": _STR_MAP,
        "template": _TEMPLATE,
        "serviceType": {"type": "string"},
        "enableIngress": {"type": "boolean"},
        "headService": {"type": "object"},
    },
}
_WORKER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["groupName", "template"],
    "properties": {
        "groupName": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 0},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 0},
        "rayStartParams": _STR_MAP,
        "template": _TEMPLATE,
        "numOfHosts": {"type": "integer"},
        "suspend": {"type": "boolean"},
        "idleTimeoutSeconds": {"type": "integer"},
    },
}
RAY_CLUSTER_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["headGroupSpec"],
    "properties": {
        "rayVersion": {"type": "string"},
        "headGroupSpec": _HEAD,
        "workerGroupSpecs": {"type": "array", "items": _WORKER},
        "enableInTreeAutoscaling": {"type": "boolean"},
        "autoscalerOptions": {"type": "object"},
        "headServiceAnnotations": _STR_MAP,
        "suspend": {"type": "boolean"},
    },
}
_METADATA = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": _STR_MAP,
        "annotations": _STR_MAP,
    },
}


def _kind(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "ray.io/v1"},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


RAYSERVICE = _kind(
    "RayService",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["serveConfigV2", "rayClusterConfig"],
        "properties": {
            "serveConfigV2": {"type": "string"},
            "rayClusterConfig": RAY_CLUSTER_SPEC,
            "serviceUnhealthySecondThreshold": {"type": "integer"},
            "deploymentUnhealthySecondThreshold": {"type": "integer"},
            "upgradeStrategy": {"type": "object"},
            "excludeHeadPodFromServeSvc": {"type": "boolean"},
        },
    },
)
RAYJOB = _kind(
    "RayJob",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["entrypoint"],
        "properties": {
            "entrypoint": {"type": "string", "minLength": 1},
            "rayClusterSpec": RAY_CLUSTER_SPEC,
            "clusterSelector": _STR_MAP,
            "shutdownAfterJobFinishes": {"type": "boolean"},
            "ttlSecondsAfterFinished": {"type": "integer", "minimum": 0},
            "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
            "backoffLimit": {"type": "integer", "minimum": 0},
            "suspend": {"type": "boolean"},
            "runtimeEnvYAML": {"type": "string"},
            "jobId": {"type": "string"},
            "submissionMode": {"enum": ["K8sJobMode", "HTTPMode", "InteractiveMode"]},
            "entrypointNumCpus": {"type": "number"},
            "submitterPodTemplate": {"type": "object"},
        },
    },
)
SCHEMAS = {"RayService": RAYSERVICE, "RayJob": RAYJOB}


def pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates inside a RayService or RayJob."""
    spec = doc["spec"]
    cluster = spec.get("rayClusterConfig") or spec.get("rayClusterSpec") or {}
    out = [cluster["headGroupSpec"]["template"]] if "headGroupSpec" in cluster else []
    out += [w["template"] for w in cluster.get("workerGroupSpecs", [])]
    return out
