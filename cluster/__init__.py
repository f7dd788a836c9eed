"""The Kubernetes side: metric collector, Redis metric store, Kubernetes backend, sample app, manifests.

It implements ``envs.backend.Backend`` against a real cluster and never imports ``policies`` or
``aware_ray``. This package imports nothing at load time, so the small sample-app image can ship a
few of its modules without the Kubernetes client.

- ``metric_store``: every Redis read and write (metric series, record streams, buffered writes);
- ``sample_schema``: the fields of one per-Deployment sample, and how samples of several nodes merge;
- ``collector`` (+ ``collector_math``, ``prom_text``): ``python -m cluster.collector``, one per node;
- ``kubernetes_backend`` (+ ``backend_config``, ``api_calls``, ``quantity``, ``errors``): the Backend;
- ``namespaces``, ``loadgen_control``: one namespace per env runner, and the episode's load instruction;
- ``sampleapp``: the sample microservice and its open-loop load generator;
- ``render_app``: manifests of the sample app from an app spec (``aware-ray render-app``);
- ``manifests/``: kustomize base (RBAC, Redis, collector, controller, NetworkPolicies, KubeRay).
"""
