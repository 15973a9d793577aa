"""The operator (`imagepipe operator`): a kopf operator that reconciles
ImagePipeline resources into their children (ConfigMap, ingest and consumer
Deployments, Service, PDB, PrometheusRule) and autoscales the consumers to
keep the latency objective.

This folder is a namespace portion (no ``__init__.py``) so that it can never
shadow the standard library's ``operator`` module from the repository root.
"""
