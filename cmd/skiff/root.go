package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/reset"
	"github.com/skiff-sh/skiff/internal/server"
	"github.com/skiff-sh/skiff/internal/version"
)

const defaultDataDir = "/var/lib/skiff"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "A lightweight Kubernetes in one binary",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newServerCommand(), newAgentCommand(), newKubectlCommand(), newRuntimeCommand(), newImageCommand(), newVersionCommand(), newResetCommand())
	return root
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newServerCommand() *cobra.Command {
	var (
		cfg         server.Config
		serviceCIDR string
		clusterCIDR string
		nodeIP      string
		endpoint    string
		debug       bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the API server, its datastore and controllers (and an agent for this node)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.ServiceCIDR, err = netip.ParsePrefix(serviceCIDR); err != nil {
				return fmt.Errorf("--service-cidr: %w", err)
			}
			if cfg.ClusterCIDR, err = netip.ParsePrefix(clusterCIDR); err != nil {
				return fmt.Errorf("--cluster-cidr: %w", err)
			}
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
			if endpoint != "" {
				for _, ep := range strings.Split(endpoint, ",") {
					cfg.DatastoreEndpoints = append(cfg.DatastoreEndpoints, strings.TrimSpace(ep))
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return server.Run(ctx, cfg, newLogger(debug))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cfg.DataDir, "data-dir", "d", defaultDataDir, "folder to hold state")
	f.StringVar(&cfg.BindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	f.IntVar(&cfg.HTTPSPort, "https-listen-port", 6443, "HTTPS listen port (0 picks a free port)")
	f.StringVarP(&cfg.WriteKubeconfig, "write-kubeconfig", "o", "", "also write the admin kubeconfig to this path")
	f.StringVarP(&cfg.Token, "token", "t", "", "shared secret used to join agents to the cluster (generated when empty)")
	f.StringVar(&endpoint, "datastore-endpoint", "", "external etcd endpoints, comma separated (e.g. https://10.0.0.1:2379); empty runs an embedded etcd")
	f.StringVar(&cfg.DatastoreCAFile, "datastore-cafile", "", "TLS certificate authority file for the datastore")
	f.StringVar(&cfg.DatastoreCertFile, "datastore-certfile", "", "TLS client certificate file for the datastore")
	f.StringVar(&cfg.DatastoreKeyFile, "datastore-keyfile", "", "TLS client key file for the datastore")
	f.StringVar(&serviceCIDR, "service-cidr", "10.43.0.0/16", "IPv4 range for service cluster IPs")
	f.StringVar(&clusterCIDR, "cluster-cidr", "10.42.0.0/16", "IPv4 range for pod IPs")
	f.StringVar(&cfg.NodeName, "node-name", "", "node name (default: hostname)")
	f.StringVar(&nodeIP, "node-ip", "", "IP address advertised for this node")
	f.BoolVar(&cfg.DisableAgent, "disable-agent", false, "do not run a node agent on this machine")
	f.BoolVar(&cfg.DisableScheduler, "disable-scheduler", false, "do not run the scheduler")
	f.BoolVar(&cfg.DisableControllerManager, "disable-controller-manager", false, "do not run the workload controllers (ReplicaSet, Deployment, Job, CronJob)")
	f.DurationVar(&cfg.CompactionInterval, "etcd-compaction-interval", 5*time.Minute, "how often to compact the datastore's history (0 disables)")
	f.BoolVar(&debug, "debug", false, "debug logging")
	f.StringVar(&cfg.RunDir, "run-dir", "/run/skiff", "where the agent keeps runtime state and pod network namespaces")
	f.StringVar(&cfg.Bridge, "bridge", "skiff0", "the pod network's bridge")
	f.IntVar(&cfg.KubeletPort, "kubelet-port", 10250, "port of the agent's API for logs, exec and port-forward (0 picks a free port)")
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			info := version.Info()
			fmt.Fprintf(cmd.OutOrStdout(), "skiff version %s (%s)\nKubernetes API %s\ngo version %s\n", version.Version, orUnknown(version.GitCommit), info.GitVersion, info.GoVersion)
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown commit"
	}
	return s
}

func newResetCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove everything this data dir created",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return reset.Run(cmd.Context(), reset.Config{DataDir: dataDir}, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&dataDir, "data-dir", "d", defaultDataDir, "data dir to reset")
	return cmd
}
