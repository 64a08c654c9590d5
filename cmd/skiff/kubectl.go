package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"

	"github.com/skiff-sh/skiff/internal/server"
)

// newKubectlCommand embeds the real kubectl. Without $KUBECONFIG it uses the
// admin kubeconfig of the data dir ($SKIFF_DATA_DIR or /var/lib/skiff), as
// `k3s kubectl` does.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run kubectl against this cluster",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Getenv("KUBECONFIG") == "" {
				dir := os.Getenv("SKIFF_DATA_DIR")
				if dir == "" {
					dir = defaultDataDir
				}
				os.Setenv("KUBECONFIG", server.KubeconfigPath(dir))
			}
			k := kubectlcmd.NewDefaultKubectlCommand()
			k.SetArgs(args)
			// kubectl names itself after argv[0] in messages and its user agent.
			os.Args = append([]string{filepath.Join(filepath.Dir(os.Args[0]), "kubectl")}, args...)
			os.Exit(cli.Run(k))
			return nil
		},
	}
}
