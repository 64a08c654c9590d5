package main

import (
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/kubectlbin"
)

// newKubectlCommand runs the real kubectl (skiff-kubectl, which skiff
// carries). Without $KUBECONFIG it uses the admin kubeconfig of the data
// dir ($SKIFF_DATA_DIR or /var/lib/skiff), as `k3s kubectl` does.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run kubectl against this cluster",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := kubectlbin.Path()
			if err != nil {
				return err
			}
			return syscall.Exec(bin, append([]string{"kubectl"}, args...), os.Environ())
		},
	}
}
