"""A configurable microservice and an open-loop load generator: one small image, the deployed twin of an app spec."""
