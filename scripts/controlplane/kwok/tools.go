//go:build tools

// Package tools records the kwok controller build.sh builds, so `go mod tidy` keeps its modules.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
