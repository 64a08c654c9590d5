// Package store keeps Kubernetes objects in etcd through the v3 API.
//
// Every object lives under one key; its metadata.resourceVersion is the etcd
// revision that last modified the key, so optimistic concurrency is an etcd
// compare-and-swap on that revision. Watches are fed by one etcd watch per
// resource (a hub) and fanned out in process; a watch from a revision older
// than the hub's memory goes to etcd directly, and one older than the last
// compaction fails with ErrExpired so that clients relist.
package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
)

// Codec turns objects into the bytes kept in etcd and back.
type Codec interface {
	Encode(obj runtime.Object) ([]byte, error)
	Decode(data []byte) (runtime.Object, error)
}

// Store reads and writes objects in etcd.
type Store struct {
	client *clientv3.Client
	codec  Codec
	log    *slog.Logger

	mu   sync.Mutex
	hubs map[string]*hub

	metrics Metrics
}

// Metrics observes the latency of etcd operations; nil means none.
type Metrics interface {
	ObserveEtcd(op string, d time.Duration)
}

// New returns a store over an etcd client.
func New(client *clientv3.Client, codec Codec, log *slog.Logger, m Metrics) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{client: client, codec: codec, log: log, hubs: map[string]*hub{}, metrics: m}
}

func (s *Store) observe(op string, start time.Time) {
	if s.metrics != nil {
		s.metrics.ObserveEtcd(op, time.Since(start))
	}
}

func (s *Store) decode(kv []byte, rev int64) (runtime.Object, error) {
	obj, err := s.codec.Decode(kv)
	if err != nil {
		return nil, err
	}
	if err := setRV(obj, rev); err != nil {
		return nil, err
	}
	return obj, nil
}

func setRV(obj runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	m.SetResourceVersion(strconv.FormatInt(rev, 10))
	return nil
}

// encode stores the object without its resourceVersion: the key's revision is
// the source of truth.
func (s *Store) encode(obj runtime.Object) ([]byte, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, err
	}
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	return s.codec.Encode(obj)
}

// Get returns the object stored under key.
func (s *Store) Get(ctx context.Context, key string) (runtime.Object, error) {
	defer s.observe("get", time.Now())
	resp, err := s.client.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, newErr(ErrNotFound, key, "")
	}
	kv := resp.Kvs[0]
	return s.decode(kv.Value, kv.ModRevision)
}

// Create stores obj under key if the key is free, and returns the stored
// object with its resourceVersion set.
func (s *Store) Create(ctx context.Context, key string, obj runtime.Object) (runtime.Object, error) {
	defer s.observe("create", time.Now())
	data, err := s.encode(obj)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(data))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	if !resp.Succeeded {
		return nil, newErr(ErrExists, key, "")
	}
	out := obj.DeepCopyObject()
	return out, setRV(out, resp.Header.Revision)
}

// UpdateFunc computes the new state of an object from its current one. It
// gets a copy it may change. Returning the copy unchanged (same encoding)
// skips the write.
type UpdateFunc func(current runtime.Object) (runtime.Object, error)

// Update applies fn to the current object and writes the result, retrying on
// concurrent writes. The object is deleted instead when deleteIf returns true
// for the result (an object whose deletion was waiting on its last finalizer).
func (s *Store) Update(ctx context.Context, key string, fn UpdateFunc, deleteIf func(runtime.Object) bool) (runtime.Object, error) {
	defer s.observe("update", time.Now())
	for {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, newErr(ErrNotFound, key, "")
		}
		kv := resp.Kvs[0]
		cur, err := s.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur.DeepCopyObject())
		if err != nil {
			return nil, err
		}
		if deleteIf != nil && deleteIf(next) {
			txn, err := s.client.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
				Then(clientv3.OpDelete(key)).Commit()
			if err != nil {
				return nil, fmt.Errorf("delete %s: %w", key, err)
			}
			if !txn.Succeeded {
				continue
			}
			return next, setRV(next, txn.Header.Revision)
		}
		data, err := s.encode(next)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(data, kv.Value) {
			return next, setRV(next, kv.ModRevision)
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpPut(key, string(data))).Commit()
		if err != nil {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		if !txn.Succeeded {
			continue
		}
		return next, setRV(next, txn.Header.Revision)
	}
}

// Delete removes the object under key after check accepts its current state,
// and returns that last state with the deletion's revision.
func (s *Store) Delete(ctx context.Context, key string, check func(current runtime.Object) error) (runtime.Object, error) {
	defer s.observe("delete", time.Now())
	for {
		resp, err := s.client.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
		if len(resp.Kvs) == 0 {
			return nil, newErr(ErrNotFound, key, "")
		}
		kv := resp.Kvs[0]
		cur, err := s.decode(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(cur); err != nil {
				return nil, err
			}
		}
		txn, err := s.client.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).Commit()
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
		if txn.Succeeded {
			return cur, setRV(cur, txn.Header.Revision)
		}
	}
}

// ListOptions narrows a List.
type ListOptions struct {
	// Revision reads at that revision; 0 reads the latest.
	Revision int64
	// Limit caps the items returned; 0 means all.
	Limit int64
	// Continue resumes a previous limited list.
	Continue string
	// Match keeps only objects it accepts; nil keeps all.
	Match func(runtime.Object) bool
}

// ListResult is one page of a List.
type ListResult struct {
	Items    []runtime.Object
	Revision int64
	// Continue is set when more items remain.
	Continue string
	// Remaining counts the keys after this page when known (no Match).
	Remaining *int64
}

type continueToken struct {
	Version  string `json:"v"`
	Revision int64  `json:"rv"`
	Start    string `json:"start"`
}

// List returns the objects under prefix.
func (s *Store) List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error) {
	defer s.observe("list", time.Now())
	start := prefix
	rev := opts.Revision
	if opts.Continue != "" {
		tok, err := decodeContinue(opts.Continue, prefix)
		if err != nil {
			return nil, err
		}
		start, rev = tok.start, tok.rev
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	res := &ListResult{}
	batch := opts.Limit
	if batch <= 0 || batch > 1000 {
		batch = 1000
	}
	for {
		ops := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(batch)}
		if rev > 0 {
			ops = append(ops, clientv3.WithRev(rev))
		}
		resp, err := s.client.Get(ctx, start, ops...)
		if err != nil {
			return nil, translateRevErr(err, prefix)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for i, kv := range resp.Kvs {
			obj, err := s.decode(kv.Value, kv.ModRevision)
			if err != nil {
				return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
			}
			if opts.Match != nil && !opts.Match(obj) {
				continue
			}
			res.Items = append(res.Items, obj)
			if opts.Limit > 0 && int64(len(res.Items)) == opts.Limit {
				more := resp.More || i < len(resp.Kvs)-1
				if more {
					res.Continue = encodeContinue(rev, string(kv.Key)+"\x00", prefix)
					if opts.Match == nil {
						n := resp.Count - int64(i) - 1
						res.Remaining = &n
					}
				}
				res.Revision = rev
				return res, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	res.Revision = rev
	return res, nil
}

type decodedToken struct {
	start string
	rev   int64
}

func encodeContinue(rev int64, next, prefix string) string {
	tok := continueToken{Version: "meta.k8s.io/v1", Revision: rev, Start: next[len(prefix):]}
	data, _ := json.Marshal(tok)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeContinue(s, prefix string) (decodedToken, error) {
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return decodedToken{}, newErr(ErrInvalidContinue, prefix, err.Error())
	}
	var tok continueToken
	if err := json.Unmarshal(data, &tok); err != nil || tok.Version != "meta.k8s.io/v1" || tok.Revision <= 0 {
		return decodedToken{}, newErr(ErrInvalidContinue, prefix, "malformed token")
	}
	return decodedToken{start: prefix + tok.Start, rev: tok.Revision}, nil
}

func translateRevErr(err error, key string) error {
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return newErr(ErrExpired, key, "the requested resource version has been compacted")
	case errors.Is(err, rpctypes.ErrFutureRev):
		return newErr(ErrTooLarge, key, "the requested resource version is newer than the store")
	}
	return fmt.Errorf("list %s: %w", key, err)
}

// Count returns how many keys are under prefix.
func (s *Store) Count(ctx context.Context, prefix string) (int64, error) {
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Count, nil
}

// Revision returns etcd's current revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	resp, err := s.client.Get(ctx, "compact_rev_key", clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Ping checks that etcd answers.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.Revision(ctx)
	return err
}
