// Command kube-apiserver is the upstream Kubernetes API server, built from the Go module proxy.
// It mirrors k8s.io/kubernetes/cmd/kube-apiserver/apiserver.go, which cannot be installed with
// `go install` because kubernetes' go.mod replaces its staging modules with local folders.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
