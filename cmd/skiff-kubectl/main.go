// Command skiff-kubectl is the real kubectl, kept out of the skiff binary
// so that the server does not pay for kubectl's package initialisation
// (about 20 ms and 20 MB at every start). skiff carries it compressed and
// `skiff kubectl` runs it. Without $KUBECONFIG it uses the admin kubeconfig
// of $SKIFF_DATA_DIR (default /var/lib/skiff), as `k3s kubectl` does.
package main

import (
	"os"
	"path/filepath"

	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
)

func main() {
	if os.Getenv("KUBECONFIG") == "" {
		dir := os.Getenv("SKIFF_DATA_DIR")
		if dir == "" {
			dir = "/var/lib/skiff"
		}
		os.Setenv("KUBECONFIG", filepath.Join(dir, "kubeconfig.yaml"))
	}
	// kubectl names itself after argv[0] in messages and its user agent.
	os.Args[0] = "kubectl"
	os.Exit(cli.Run(kubectlcmd.NewDefaultKubectlCommand()))
}
