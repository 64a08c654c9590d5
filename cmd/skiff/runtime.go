package main

import (
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/runtime/binary"
)

// newRuntimeCommand hands `skiff runtime ...` to skiff-runtime, the small
// binary skiff carries, so that containers never pay for the server's
// libraries.
func newRuntimeCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "runtime",
		Short:              "The OCI runtime (runc-compatible: create, start, state, kill, delete, run, exec, ps, events, spec, list)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			bin, err := binary.Path()
			if err != nil {
				return err
			}
			return syscall.Exec(bin, append([]string{"skiff-runtime"}, args...), os.Environ())
		},
	}
}
