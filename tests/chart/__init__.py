"""Tests of charts/inference-stack on the real Helm 3 and Helm 4 binaries."""
