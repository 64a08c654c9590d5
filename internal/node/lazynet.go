package node

import (
	"errors"
	"sync"

	"github.com/skiff-sh/skiff/internal/network"
)

// lazyNetwork is the pod network once the node has its pod range; until
// then (the agent starts no pod before it) it refuses.
type lazyNetwork struct {
	mu sync.Mutex
	n  *network.Network
}

var errNoPodRange = errors.New("the node has no pod range yet")

func (l *lazyNetwork) set(n *network.Network) {
	l.mu.Lock()
	l.n = n
	l.mu.Unlock()
}

func (l *lazyNetwork) get() (*network.Network, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == nil {
		return nil, errNoPodRange
	}
	return l.n, nil
}

func (l *lazyNetwork) Setup(id string) (*network.Pod, error) {
	n, err := l.get()
	if err != nil {
		return nil, err
	}
	return n.Setup(id)
}

func (l *lazyNetwork) Teardown(id string) error {
	n, err := l.get()
	if err != nil {
		return err
	}
	return n.Teardown(id)
}

func (l *lazyNetwork) Status(id string) (*network.Pod, error) {
	n, err := l.get()
	if err != nil {
		return nil, err
	}
	return n.Status(id)
}
