"""The Kubernetes side: metric collector, Redis metric store, Kubernetes backend, manifests.

It implements ``envs.backend.Backend`` against a real cluster and never imports ``policies``.
"""
