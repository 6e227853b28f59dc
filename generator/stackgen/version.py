"""stackgen's version, which is also its chart's `version` and `appVersion`: values rendered by one stackgen are
refused by another version of the chart (charts/inference-stack/templates/validate.yaml)."""

VERSION = "0.1.0"  # versions.yaml: stackgen
