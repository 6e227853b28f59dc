// CoreDNS for the node tier's cluster DNS with only the plugins its Corefile (tests/node/coredns.yaml) names:
// the Corefile kubeadm deploys, less `forward`, since nothing upstream is reachable. CoreDNS's own main
// compiles every plugin in, and with them the cloud providers' SDKs, etcd's client and gRPC; this one builds
// from the same module at the same release in a fraction of the time (scripts/node/README.md).
package main

import (
	"github.com/coredns/coredns/coremain"

	// The Corefile's plugins; `prometheus` is the metrics plugin.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The order of the plugins in a server's chain stays CoreDNS's own (core/dnsserver's Directives); a directive
// whose plugin is not compiled in is refused when a Corefile names it.
func main() {
	coremain.Run()
}
