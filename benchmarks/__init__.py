"""Benchmarks of tork_ray against raw baselines measured in the same run (`python -m benchmarks`)."""
