// pause is the sandbox image of the node tier: it holds a pod's namespaces and exits on SIGTERM or
// SIGINT, which is all the kubelet asks of registry.k8s.io/pause. Built static, it is the image's only
// file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
