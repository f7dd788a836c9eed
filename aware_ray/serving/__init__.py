"""The policy endpoint: a Ray Serve application over HTTP and gRPC (see docs/serving.md)."""
