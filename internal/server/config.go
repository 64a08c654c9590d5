package server

import (
	"net/netip"
	"time"
)

// Config is the server role's configuration, filled from flags by cmd/skiff.
type Config struct {
	// DataDir holds everything the server keeps (default /var/lib/skiff).
	DataDir string
	// BindAddress and HTTPSPort are where the API is served.
	BindAddress string
	HTTPSPort   int
	// WriteKubeconfig is an extra path for the admin kubeconfig.
	WriteKubeconfig string
	// Token admits agents; empty means generate one (kept in the data dir).
	Token string
	// Datastore: empty endpoints means the embedded etcd.
	DatastoreEndpoints []string
	DatastoreCAFile    string
	DatastoreCertFile  string
	DatastoreKeyFile   string
	// ServiceCIDR is where cluster IPs come from.
	ServiceCIDR netip.Prefix
	// ClusterCIDR is the pod network (per-node ranges come with the agent).
	ClusterCIDR netip.Prefix
	// NodeName and NodeIP name this machine (defaults: hostname, first
	// non-loopback address).
	NodeName string
	NodeIP   netip.Addr
	// DisableAgent runs no node agent on this machine.
	DisableAgent bool
	// DisableScheduler runs no scheduler in this server (k3s's flag).
	DisableScheduler bool
	// DisableControllerManager runs none of the workload controllers
	// (ReplicaSet, Deployment, Job, CronJob; k3s's flag).
	DisableControllerManager bool
	// CompactionInterval is how often etcd history is compacted.
	CompactionInterval time.Duration
	// RunDir holds the agent's runtime state and pinned network
	// namespaces (default /run/skiff).
	RunDir string
	// Bridge is the pod network's bridge (default skiff0).
	Bridge string
	// KubeletPort is where the agent serves logs, exec, attach and
	// port-forward to the API server (default 10250; 0 picks one).
	KubeletPort int
}
