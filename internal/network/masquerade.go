package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// The masquerade rule: traffic from this node's pods to anything outside
// the cluster's pod range leaves with the node's address, as flannel and
// the bridge CNI plugin's ipMasq do. It lives in a table of its own per
// bridge ("skiff-<bridge>", family ip), made with netlink: no nft binary.

func (n *Network) tableName() string { return "skiff-" + n.cfg.Bridge }

// ensureMasquerade (re)writes the table, in one netlink batch.
func (n *Network) ensureMasquerade() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: n.tableName()}
	if exists, err := tableExists(c, table.Name); err != nil {
		return err
	} else if exists {
		c.DelTable(table)
	}
	c.AddTable(table)
	chain := c.AddChain(&nftables.Chain{Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	cluster := n.cfg.ClusterCIDR
	if cluster == nil {
		cluster = n.cfg.PodCIDR
	}
	var exprs []expr.Any
	exprs = append(exprs, matchAddr(12, n.cfg.PodCIDR, expr.CmpOpEq)...) // saddr in this node's pods
	exprs = append(exprs, matchAddr(16, cluster, expr.CmpOpNeq)...)      // daddr outside the pod range
	exprs = append(exprs, &expr.Counter{}, &expr.Masq{})
	c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables masquerade rule: %w", err)
	}
	return nil
}

// matchAddr compares the IPv4 address at offset (12 source, 16
// destination) of the network header, masked to cidr, with op.
func matchAddr(offset uint32, cidr *net.IPNet, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(cidr.Mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: op, Register: 1, Data: []byte(cidr.IP.To4())},
	}
}

func (n *Network) deleteMasquerade() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	exists, err := tableExists(c, n.tableName())
	if err != nil || !exists {
		return err
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: n.tableName()})
	return c.Flush()
}

func tableExists(c *nftables.Conn, name string) (bool, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("nftables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

const ipForward = "/proc/sys/net/ipv4/ip_forward"

// enableForwarding turns IPv4 forwarding on, noting in the state directory
// that it was off so that Reset can turn it off again.
func (n *Network) enableForwarding() error {
	cur, err := os.ReadFile(ipForward)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(n.cfg.StateDir, "ip_forward.was"), cur); err != nil {
		return err
	}
	return os.WriteFile(ipForward, []byte("1"), 0)
}

func (n *Network) restoreForwarding() error {
	was, err := os.ReadFile(filepath.Join(n.cfg.StateDir, "ip_forward.was"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.WriteFile(ipForward, was, 0)
}
