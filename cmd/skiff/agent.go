package main

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/node"
)

func newAgentCommand() *cobra.Command {
	var (
		cfg    node.AgentConfig
		nodeIP string
		debug  bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent for this machine, joined to a skiff server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Token == "" {
				cfg.Token = os.Getenv("SKIFF_TOKEN")
			}
			var err error
			if nodeIP != "" {
				if cfg.NodeIP, err = netip.ParseAddr(nodeIP); err != nil {
					return fmt.Errorf("--node-ip: %w", err)
				}
			} else {
				cfg.NodeIP = defaultNodeIP()
			}
			if cfg.NodeName == "" {
				cfg.NodeName, _ = os.Hostname()
			}
			ctx, cancel := signalContext()
			defer cancel()
			return node.RunAgent(ctx, cfg, newLogger(debug))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.Server, "server", "s", "", "the server's URL, e.g. https://10.0.0.1:6443")
	f.StringVarP(&cfg.Token, "token", "t", "", "the server's join token (its data dir's server/node-token; or $SKIFF_TOKEN)")
	f.StringVarP(&cfg.DataDir, "data-dir", "d", defaultDataDir, "folder to hold state")
	f.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname)")
	f.StringVar(&nodeIP, "node-ip", "", "IP address advertised for this node")
	f.StringVar(&cfg.RunDir, "run-dir", "/run/skiff", "where the agent keeps runtime state and pod network namespaces")
	f.StringVar(&cfg.Bridge, "bridge", "skiff0", "the pod network's bridge")
	f.IntVar(&cfg.KubeletPort, "kubelet-port", 10250, "port of the agent's API for logs, exec and port-forward (0 picks a free port)")
	f.BoolVar(&debug, "debug", false, "debug logging")
	return cmd
}
