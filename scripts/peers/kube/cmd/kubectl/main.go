// Command kubectl is the upstream Kubernetes CLI at the same version as the apiserver it is tested
// against (kubectl's skew policy allows one minor version either way). It mirrors
// k8s.io/kubernetes/cmd/kubectl/kubectl.go, built from the Go module proxy like the other commands here.
package main

import (
	_ "k8s.io/client-go/plugin/pkg/client/auth" // client auth plugins (exec, oidc)
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		// Pretty-print the error and exit with an error.
		util.CheckErr(err)
	}
}
