"""Cluster profiles and studies submitted as Ray jobs (Jobs API, token authentication, shared storage)."""
