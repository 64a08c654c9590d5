package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// newRuntimeCommand hands `skiff runtime ...` to skiff-runtime, the small
// binary installed beside skiff, so that containers never pay for the
// server's libraries.
func newRuntimeCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "runtime",
		Short:              "The OCI runtime (runc-compatible: create, start, state, kill, delete, run, spec, list)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			bin := filepath.Join(filepath.Dir(self), "skiff-runtime")
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("skiff-runtime not found beside %s: %w", self, err)
			}
			return syscall.Exec(bin, append([]string{"skiff-runtime"}, args...), os.Environ())
		},
	}
}
