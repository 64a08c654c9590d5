package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// historySize is how many recent events each hub keeps, so that a client
// resuming a watch is served from memory.
const historySize = 4096

// subscriberBuffer is how many events may wait for a slow watcher before it
// is cut off (it then re-watches from its last revision).
const subscriberBuffer = 1024

// Event is one change to an object.
type Event struct {
	Type watch.EventType
	// Key is the object's key.
	Key string
	// Object is the new state, or the last state for a deletion, with the
	// event's revision as resourceVersion. Shared between watchers: read only.
	Object runtime.Object
	// Prev is the state before the change (nil for Added).
	Prev     runtime.Object
	Revision int64
	// Err ends the watch with an error (for example ErrExpired).
	Err error
}

// Watcher delivers events until stopped or until its context ends.
type Watcher struct {
	ch     chan Event
	once   sync.Once
	done   chan struct{}
	prefix string
	from   int64
	hub    *hub
}

// Events is closed when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.ch }

// Stop ends the watch.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		close(w.done)
		if w.hub != nil {
			w.hub.unsubscribe(w)
		}
	})
}

// hub is the single etcd watch of one resource, fanned out to watchers.
type hub struct {
	store  *Store
	prefix string

	mu      sync.Mutex
	history []Event
	// floor is the revision from which every later event is in history.
	floor int64
	// rev is the newest revision the hub knows to be complete.
	rev  int64
	subs map[*Watcher]struct{}
}

// StartWatching starts the etcd watch of a resource prefix, so that later
// watches can be served from the time the server started.
func (s *Store) StartWatching(ctx context.Context, prefix string) error {
	_, err := s.hub(ctx, prefix)
	return err
}

func (s *Store) hub(ctx context.Context, prefix string) (*hub, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hubs[prefix]; ok {
		return h, nil
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	h := &hub{store: s, prefix: prefix, floor: rev, rev: rev, subs: map[*Watcher]struct{}{}}
	s.hubs[prefix] = h
	go h.run(context.WithoutCancel(ctx))
	return h, nil
}

// ResourceRevision returns the newest revision the resource's hub has seen.
func (s *Store) ResourceRevision(prefix string) int64 {
	s.mu.Lock()
	h := s.hubs[prefix]
	s.mu.Unlock()
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rev
}

func (h *hub) run(ctx context.Context) {
	for {
		h.mu.Lock()
		from := h.rev + 1
		h.mu.Unlock()
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := h.store.client.Watch(wctx, h.prefix, clientv3.WithPrefix(), clientv3.WithRev(from),
			clientv3.WithPrevKV(), clientv3.WithProgressNotify())
		for resp := range wch {
			if resp.CompactRevision != 0 || resp.Err() != nil {
				h.store.log.Warn("resource watch restarting", "prefix", h.prefix, "err", resp.Err())
				break
			}
			if resp.IsProgressNotify() {
				h.progress(resp.Header.Revision)
				continue
			}
			h.apply(resp.Events, resp.Header.Revision)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		// A broken or compacted watch leaves a gap: every watcher must resume
		// on its own, and the hub starts over from now.
		h.reset(ctx)
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *hub) reset(ctx context.Context) {
	rev, err := h.store.Revision(ctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.rev = rev
	}
	h.floor = h.rev
	h.history = nil
	for w := range h.subs {
		delete(h.subs, w)
		h.kill(w, newErr(ErrExpired, h.prefix, "watch restarted"))
	}
}

func (h *hub) progress(rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev > h.rev {
		h.rev = rev
	}
}

func (h *hub) apply(evs []*clientv3.Event, headerRev int64) {
	decoded := make([]Event, 0, len(evs))
	for _, ev := range evs {
		e, err := h.store.toEvent(ev)
		if err != nil {
			h.store.log.Error("decode watch event", "key", string(ev.Kv.Key), "err", err)
			continue
		}
		decoded = append(decoded, e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range decoded {
		h.history = append(h.history, e)
		for w := range h.subs {
			// A watcher that started from a newer revision than the hub
			// has reached skips what it already has.
			if e.Revision <= w.from || !strings.HasPrefix(e.Key, w.prefix) {
				continue
			}
			select {
			case w.ch <- e:
			default:
				delete(h.subs, w)
				h.kill(w, fmt.Errorf("watcher too slow: %w", ErrExpired))
			}
		}
	}
	if n := len(h.history); n > historySize {
		drop := n - historySize
		h.floor = h.history[drop-1].Revision
		h.history = append([]Event(nil), h.history[drop:]...)
	}
	if headerRev > h.rev {
		h.rev = headerRev
	}
}

// kill ends a watcher whose events can no longer be delivered in order. The
// error event is sent from a goroutine because the channel may be full.
func (h *hub) kill(w *Watcher, err error) {
	go func() {
		defer close(w.ch)
		select {
		case w.ch <- Event{Type: watch.Error, Err: err}:
		case <-w.done:
		case <-time.After(10 * time.Second):
		}
	}()
}

func (h *hub) unsubscribe(w *Watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[w]; ok {
		delete(h.subs, w)
		close(w.ch)
	}
}

// subscribe returns a watcher of events after from, or nil if the hub's
// memory does not reach back that far.
func (h *hub) subscribe(keyPrefix string, from int64) *Watcher {
	h.mu.Lock()
	defer h.mu.Unlock()
	if from < h.floor {
		return nil
	}
	var backlog []Event
	for _, e := range h.history {
		if e.Revision > from && strings.HasPrefix(e.Key, keyPrefix) {
			backlog = append(backlog, e)
		}
	}
	w := &Watcher{ch: make(chan Event, subscriberBuffer+len(backlog)), done: make(chan struct{}), prefix: keyPrefix, from: from, hub: h}
	for _, e := range backlog {
		w.ch <- e
	}
	h.subs[w] = struct{}{}
	return w
}

func (s *Store) toEvent(ev *clientv3.Event) (Event, error) {
	e := Event{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision}
	if ev.PrevKv != nil {
		prev, err := s.decode(ev.PrevKv.Value, ev.PrevKv.ModRevision)
		if err != nil {
			return e, err
		}
		e.Prev = prev
	}
	switch {
	case ev.Type == mvccpb.DELETE:
		e.Type = watch.Deleted
		if e.Prev == nil {
			return e, errors.New("delete event without previous value")
		}
		e.Object = e.Prev.DeepCopyObject()
		if err := setRV(e.Object, ev.Kv.ModRevision); err != nil {
			return e, err
		}
	case ev.IsCreate():
		e.Type = watch.Added
		obj, err := s.decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return e, err
		}
		e.Object = obj
	default:
		e.Type = watch.Modified
		obj, err := s.decode(ev.Kv.Value, ev.Kv.ModRevision)
		if err != nil {
			return e, err
		}
		e.Object = obj
	}
	return e, nil
}

// Watch returns the changes under keyPrefix (inside the resource's prefix)
// after revision from. A revision older than etcd's compaction fails with
// ErrExpired.
func (s *Store) Watch(ctx context.Context, resourcePrefix, keyPrefix string, from int64) (*Watcher, error) {
	h, err := s.hub(ctx, resourcePrefix)
	if err != nil {
		return nil, err
	}
	if w := h.subscribe(keyPrefix, from); w != nil {
		go func() {
			select {
			case <-ctx.Done():
				w.Stop()
			case <-w.done:
			}
		}()
		return w, nil
	}
	return s.watchEtcd(ctx, keyPrefix, from)
}

// watchEtcd serves a watch older than the hub's memory straight from etcd.
func (s *Store) watchEtcd(ctx context.Context, keyPrefix string, from int64) (*Watcher, error) {
	if _, err := s.client.Get(ctx, keyPrefix, clientv3.WithRev(from), clientv3.WithCountOnly()); err != nil {
		return nil, translateRevErr(err, keyPrefix)
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w := &Watcher{ch: make(chan Event, subscriberBuffer), done: make(chan struct{}), prefix: keyPrefix, from: from}
	wch := s.client.Watch(wctx, keyPrefix, clientv3.WithPrefix(), clientv3.WithRev(from+1), clientv3.WithPrevKV())
	go func() {
		defer close(w.ch)
		defer cancel()
		for {
			select {
			case <-w.done:
				return
			case resp, ok := <-wch:
				if !ok {
					return
				}
				if resp.CompactRevision != 0 {
					w.send(Event{Type: watch.Error, Err: newErr(ErrExpired, keyPrefix, "the requested resource version has been compacted")})
					return
				}
				if err := resp.Err(); err != nil {
					w.send(Event{Type: watch.Error, Err: err})
					return
				}
				for _, ev := range resp.Events {
					e, err := s.toEvent(ev)
					if err != nil {
						s.log.Error("decode watch event", "key", string(ev.Kv.Key), "err", err)
						continue
					}
					if !w.send(e) {
						return
					}
				}
			}
		}
	}()
	return w, nil
}

func (w *Watcher) send(e Event) bool {
	select {
	case w.ch <- e:
		return true
	case <-w.done:
		return false
	}
}
