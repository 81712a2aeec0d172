// Command kube-proxy is the upstream Service proxy, built from the Go module proxy.
// It mirrors k8s.io/kubernetes/cmd/kube-proxy/proxy.go. A node runs it in nftables mode, so Service
// ClusterIPs (the `kubernetes` Service among them) route from pods.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	command := app.NewProxyCommand()
	code := cli.Run(command)
	os.Exit(code)
}
