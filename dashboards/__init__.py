"""Grafana provisioning for hipstride: the generator (generate.py) and the demo team (demo.py)."""
