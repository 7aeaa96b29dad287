"""Deployment of DuckLM: the local launcher (`python -m deploy.stack`), compose and Kubernetes files."""
