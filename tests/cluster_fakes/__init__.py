"""Test doubles for the Kubernetes side: a real redis-server per session, a fake API server, a fake kubelet."""
